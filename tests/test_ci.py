"""CI runs the README's own two commands in a new virtualenv and fails on a
skipped test: checks that it still does."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_command(which):
    spec = importlib.util.spec_from_file_location("readme_command", REPO / ".ci" / "readme_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.readme_command(which)


def test_ci_runs_the_readme_commands_in_a_new_virtualenv():
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and "--system-site-packages" not in ci
    assert '"$(python .ci/readme_command.py install)"' in ci and '"$(python .ci/readme_command.py test)"' in ci
    assert "PUFFER_NO_SKIPS=1" in ci


def test_readme_commands_install_the_test_extra_and_run_pytest():
    install = readme_command("install")
    assert '-e ".[test]"' in install and "puffer train" in install
    assert readme_command("test").split()[0] == "pytest"


def run_pytest_on(tmp_path, source, no_skips):
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_sample.py").write_text(source)
    env = {**os.environ, "PUFFER_NO_SKIPS": "1" if no_skips else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


SKIPPING = """
import pytest

def test_runs():
    assert True

def test_skips():
    pytest.skip("a missing dependency")

@pytest.mark.gpu
def test_needs_a_gpu():
    assert True
"""


def test_a_skip_fails_the_run_under_ci_but_a_gpu_skip_does_not(tmp_path):
    strict = run_pytest_on(tmp_path, SKIPPING, no_skips=True)
    assert strict.returncode == 1, strict.stdout
    assert "test_skips: Skipped: a missing dependency" in strict.stdout
    assert "test_needs_a_gpu:" not in strict.stdout.split("PUFFER_NO_SKIPS")[-1]
    assert run_pytest_on(tmp_path, SKIPPING, no_skips=False).returncode == 0
    gpu_only = run_pytest_on(tmp_path, SKIPPING.replace('pytest.skip("a missing dependency")', "pass"),
                             no_skips=True)
    assert gpu_only.returncode == 0, gpu_only.stdout
