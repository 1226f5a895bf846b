"""Every registered env under AddressSanitizer and UBSan.

Copies the project into a temporary folder, builds all its extensions there in
place with PUFFER_SANITIZE=1 (setup.py then compiles with -O1 -g
-fsanitize=address,undefined), and runs tests/asan_driver.py against that copy
with gcc's libasan and libubsan preloaded. The driver imports `puffer` only
from the copy (its own meta-path finder; the editable install and the
extensions in the checkout are never touched) and, for each env in
puffer.ENVS, steps about a million random valid actions over several option
variants, resets with several seeds, reads the logs and checks that invalid
actions are rejected. Any sanitizer report fails the test.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from project_copy import FOLDERS, build_in_place, copy_project

REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().with_name("asan_driver.py")
REPORT = re.compile(r"ERROR: AddressSanitizer|runtime error:|UndefinedBehaviorSanitizer|"
                    r"ERROR: LeakSanitizer")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # Python leaks by design
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "PYTHONMALLOC": "malloc",  # every Python allocation gets ASan redzones too
}


def _tail(text, lines=60):
    return "\n".join(text.splitlines()[-lines:])


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)[0]


def _runtime(library):
    """Absolute path of a sanitizer runtime of the compiler that builds the extensions."""
    out = subprocess.run([_compiler(), f"-print-file-name={library}"], capture_output=True,
                         text=True, check=True).stdout.strip()
    if not os.path.isabs(out) or not os.path.exists(out):
        pytest.fail(f"{_compiler()} has no {library}: install its sanitizer runtime (e.g. libgcc-12-dev)")
    return out


def _build(root):
    result = build_in_place(root, timeout=900, sanitize=True)
    if result.returncode:
        pytest.fail(f"sanitizer build failed ({result.returncode}):\n{_tail(result.stdout + result.stderr)}")
    built = []
    for pyx in sorted(root.glob("envs/**/*.pyx")):
        found = list(pyx.parent.glob(pyx.stem + ".*.so"))
        assert found, f"{pyx.relative_to(root)} was not built"
        built += found
    return built


def _sanitizer_env():
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(SANITIZER_ENV)
    env["LD_PRELOAD"] = f"{_runtime('libasan.so')}:{_runtime('libubsan.so')}"
    return env


def _module_file_exists(root, module):
    """Whether `module` (a dotted puffer.* name) has a .py, extension or package in the copy."""
    for package, folder in sorted(FOLDERS.items(), key=lambda kv: -len(kv[0])):
        if module == package or module.startswith(package + "."):
            rest = module[len(package):].lstrip(".").split(".") if module != package else []
            base = root.joinpath(folder, *rest)
            return (base / "__init__.py").is_file() or base.with_suffix(".py").is_file() \
                or any(base.parent.glob(base.name + ".*.so"))
    return False


def test_envs_under_asan_and_ubsan(tmp_path):
    root = tmp_path / "puffer_asan"
    root.mkdir()
    copy_project(root)
    extensions = _build(root)
    env = _sanitizer_env()

    # The build really is instrumented: every extension calls into both runtimes.
    for so in extensions:
        data = so.read_bytes()
        assert b"__asan_report_store" in data and b"__ubsan_handle_" in data, \
            f"{so.relative_to(root)} is not built with -fsanitize=address,undefined"

    # And a report does fail a run set up like the driver's (a heap overflow via ctypes).
    canary = ("import ctypes; libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p; "
              "ctypes.memset(libc.malloc(16), 0, 17)")
    result = subprocess.run([sys.executable, "-c", canary], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "ERROR: AddressSanitizer: heap-buffer-overflow" in result.stderr, \
        f"ASan runtime not active under LD_PRELOAD={env['LD_PRELOAD']}:\n{_tail(result.stderr)}"

    result = subprocess.run([sys.executable, str(DRIVER), "--root", str(root)], cwd=root, env=env,
                            capture_output=True, text=True, timeout=900)
    lines = result.stderr.splitlines()
    reports = [i for i, line in enumerate(lines) if REPORT.search(line)]
    # The first report in full (stack and all), else the end of stderr.
    stderr = "\n".join(lines[reports[0]:reports[0] + 80]) if reports else _tail(result.stderr)
    output = f"--- stdout (end)\n{_tail(result.stdout, 30)}\n--- stderr\n{stderr}"
    assert not reports, "sanitizer reports:\n" + "\n".join(lines[i] for i in reports[:20]) + "\n" + output
    assert result.returncode == 0, f"driver exited {result.returncode}\n{output}"

    summary_lines = [line for line in result.stdout.splitlines() if line.startswith("ASAN_DRIVER_SUMMARY ")]
    assert summary_lines, f"driver printed no summary\n{output}"
    summary = json.loads(summary_lines[-1].split(" ", 1)[1])
    covered, skipped = set(summary["covered"]), set(summary["skipped"])
    assert "light_button" in covered, output

    # Every registered env (puffer.ENVS, as the copy's puffer has it) was either
    # driven or skipped because its module does not exist.
    registered = summary["registered"]
    assert covered | skipped == set(registered), (registered, summary)
    for name in skipped:
        module = registered[name].split(":")[0]
        assert not _module_file_exists(root, module), \
            f"{name} was skipped although its module {module} exists in the copy"
