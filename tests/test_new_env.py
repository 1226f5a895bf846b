"""`puffer new` and docs/writing-an-env.md, checked against each other.

In a temporary copy of the project (tests/project_copy.py: no build outputs
copied, everything built there in place, and `puffer` imported from the copy
only), this
  * runs `puffer new skel` and checks that the plain skeleton builds, passes
    the tests it generated and the generic API tests, trains (PPO reaches
    its optimal return) and benchmarks;
  * runs `puffer new catch` for the guide's example and overwrites the
    generated files with the guide's code: every fenced block whose info
    string says `file=PATH` (```c file=envs/catch/catch.h) is written to
    PATH, and every block marked `in=PATH` must appear in PATH as
    `puffer new` left it; then builds, runs the env's tests (the guide's),
    the generic API tests, and trains it with the guide's config until the
    return the guide promises ("a mean return of at least **X** over the last
    100 episodes within **N** steps").
When the guide and the code drift apart, this fails. It also checks that
`puffer new` refuses, writing nothing, an invalid or taken name and a folder
outside a checkout.
"""
import json
import keyword
import re
import shutil
import subprocess
import sys

import pytest

from project_copy import REPO, build_in_place, copy_project, run_in_copy
from puffer import scaffold

GUIDE = REPO / "docs" / "writing-an-env.md"
SKELETON = "skel"
EXAMPLE = "catch"  # the guide's example env
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[ \t]+(?P<kind>file|in)=(?P<path>\S+)[ \t]*\n"
                   r"(?P<body>.*?)^```[ \t]*$", re.M | re.S)
CLAIM = re.compile(r"mean\s+return\s+of\s+at\s+least\s+\*\*(?P<ret>[-\d.]+)\*\*\s+over\s+the\s+last\s+100\s+"
                   r"episodes\s+within\s+\*\*(?P<steps>[\d,]+)\*\*\s+steps")
TRAIN_FLAGS = ["--train.torch_threads", "1", "--train.log_interval", "1e9"]


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def check_run(result, what):
    assert result.returncode == 0, \
        f"{what} exited {result.returncode}\n--- stdout\n{tail(result.stdout)}\n--- stderr\n{tail(result.stderr)}"
    return result


def build(root):
    check_run(build_in_place(root), "setup.py build_ext --inplace")


def pytest_in_copy(root, *args):
    result = check_run(run_in_copy(root, ["-m", "pytest", "-q", "-p", "no:cacheprovider", *args]),
                       f"pytest {' '.join(args)}")
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout, result.stdout
    return result


def train_in_copy(root, name, *args):
    run_dir = root / "runs" / f"{name}-test"
    check_run(run_in_copy(root, ["-m", "puffer", "train", name, "--run-dir", str(run_dir),
                                 *TRAIN_FLAGS, *args]), f"puffer train {name}")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def guide_blocks():
    """(kind, path, body) of each block of the guide marked file=PATH or in=PATH."""
    return [(m["kind"], m["path"], m["body"]) for m in FENCE.finditer(GUIDE.read_text())]


# ---------------------------------------------------------------------------
# The skeleton and the guide's example, built in a copy of the project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project with `puffer new skel` run and built. The copy
    leaves out the other env folders, so the build compiles only the envs
    under test and the trainer: the envs already there are not what this tests."""
    root = tmp_path_factory.mktemp("project")
    copy_project(root, env_folders=[])
    check_run(run_in_copy(root, ["-m", "puffer", "new", SKELETON]), f"puffer new {SKELETON}")
    shutil.copy2(REPO / "tests" / "test_api.py", root / "tests" / "test_api.py")
    build(root)
    return root


@pytest.fixture(scope="module")
def example(project):
    """The same copy, plus `puffer new catch` with the guide's code filled in, built."""
    root = project
    result = check_run(run_in_copy(root, ["-m", "puffer", "new", EXAMPLE]), f"puffer new {EXAMPLE}")
    generated = {target.format(name=EXAMPLE) for target in scaffold.TEMPLATES.values()}
    assert all(f"  {path}" in result.stdout.splitlines() for path in generated), result.stdout
    blocks = guide_blocks()
    written = set()
    for kind, path, body in blocks:
        if kind == "file":
            assert path in generated, f"guide block file={path} is none of the files puffer new writes"
            assert path not in written, f"guide: two blocks for file={path}"
            (root / path).write_text(body)
            written.add(path)
    # The guide shows every file `puffer new` wrote, except the empty __init__.py.
    assert written == generated - {f"envs/{EXAMPLE}/__init__.py"}, sorted(generated - written)
    for kind, path, body in blocks:
        if kind == "in":
            text = (root / path).read_text()
            for line in filter(str.strip, body.splitlines()):
                assert line in text.splitlines(), f"guide: {line!r} is not in {path} after puffer new"
    build(root)
    return root


def test_skeleton_passes_its_own_and_the_generic_tests(project):
    pytest_in_copy(project, f"tests/test_{SKELETON}.py", "tests/test_api.py", "-k", SKELETON)


def test_skeleton_trains_and_benches(project):
    metrics = train_in_copy(project, SKELETON)
    assert metrics[-1]["mean_return_100"] >= 0.95, metrics[-1]  # optimal: 1
    result = check_run(run_in_copy(project, ["-m", "puffer", "bench", SKELETON, "--seconds", "0.2",
                                             "--num-envs", "1024"]), f"puffer bench {SKELETON}")
    row = [line for line in result.stdout.splitlines() if line.startswith(SKELETON + " ")]
    assert row and re.search(r"\d{1,3}(,\d{3})+", row[0]), result.stdout


def test_guide_example_passes_its_own_and_the_generic_tests(example):
    pytest_in_copy(example, f"tests/test_{EXAMPLE}.py", "tests/test_api.py", "-k", EXAMPLE)


def test_guide_example_learns_as_the_guide_says(example):
    claim = CLAIM.search(GUIDE.read_text())
    assert claim, "the guide no longer states the return its example reaches"
    threshold, steps = float(claim["ret"]), int(claim["steps"].replace(",", ""))
    metrics = train_in_copy(example, EXAMPLE)  # with the guide's configs/catch.toml
    reached = [m["global_step"] for m in metrics if (m["mean_return_100"] or float("-inf")) >= threshold]
    batch = metrics[0]["global_step"]  # steps per update
    assert reached and reached[0] <= steps + batch, \
        [(m["global_step"], m["mean_return_100"]) for m in metrics]


# ---------------------------------------------------------------------------
# What `puffer new` refuses


@pytest.fixture
def bare(tmp_path):
    """A copy of the project, not built (puffer new itself needs no build)."""
    root = tmp_path / "bare"
    root.mkdir()
    copy_project(root)
    (root / "tests").mkdir()
    (root / "tests" / "test_mine.py").write_text("")
    return root


def snapshot(root):
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()} | \
        {path: None for path in root.rglob("*") if path.is_dir()}


@pytest.mark.parametrize("name, message", [
    ("", "lowercase Python identifier"),
    ("Catch", "lowercase Python identifier"),
    ("2048", "lowercase Python identifier"),
    ("my-env", "lowercase Python identifier"),
    ("_private", "lowercase Python identifier"),
    ("café", "lowercase Python identifier"),
    ("a" * 33, "33 characters, at most 32"),
    ("class", "Python keyword"),
    ("lambda", "Python keyword"),
    ("puffer", "reserved"),
    ("binding", "reserved"),
    ("env", "reserved"),
    ("vec_env", "reserved"),
    ("time", "shadow the system header <time.h>"),
])
def test_invalid_names_write_nothing(bare, name, message):
    before = snapshot(bare)
    with pytest.raises(scaffold.ScaffoldError, match=re.escape(message)) as error:
        scaffold.new_env(name, root=bare)
    assert repr(name) in str(error.value)
    assert snapshot(bare) == before


@pytest.mark.parametrize("name, message", [
    ("cartpole", "already registers it in ENVS"),
    ("light_button", "already registers it in ENVS"),  # registered, in envs/probes/
    ("probes", "envs/probes already exists"),
    ("defaults", "configs/defaults.toml already exists"),
    ("mine", "tests/test_mine.py already exists"),
])
def test_taken_names_write_nothing(bare, name, message):
    before = snapshot(bare)
    with pytest.raises(scaffold.ScaffoldError, match=f"{name!r} is taken.*{re.escape(message)}"):
        scaffold.new_env(name, root=bare)
    assert snapshot(bare) == before


def test_found_from_a_subfolder_registered_then_taken(bare):
    written = scaffold.new_env("grid_2d", cwd=bare / "envs" / "probes")
    assert written == ["envs/grid_2d/grid_2d.h", "envs/grid_2d/binding.pyx", "envs/grid_2d/grid_2d.py",
                       "envs/grid_2d/__init__.py", "configs/grid_2d.toml", "tests/test_grid_2d.py",
                       "puffer/__init__.py"]
    _, _, envs = scaffold.registry(bare)
    assert list(envs)[-1] == "grid_2d" and envs["grid_2d"] == {"entry": "puffer.envs.grid_2d.grid_2d:Grid2d"}
    for path in written:
        assert "{{" not in (bare / path).read_text(), path
    assert "class Grid2d(PufferEnv)" in (bare / "envs/grid_2d/grid_2d.py").read_text()
    before = snapshot(bare)
    with pytest.raises(scaffold.ScaffoldError, match="already registers"):
        scaffold.new_env("grid_2d", root=bare)
    assert snapshot(bare) == before


def test_a_failed_write_is_rolled_back(bare, monkeypatch):
    before = snapshot(bare)
    calls = []

    def failing_open(path, mode="r", *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return open(path, mode, *args, **kwargs)
    monkeypatch.setattr(scaffold, "open", failing_open, raising=False)
    with pytest.raises(OSError, match="disk full"):
        scaffold.new_env("mine2", root=bare)
    assert snapshot(bare) == before


def test_register_keeps_the_dict_valid():
    source = 'X = 1\nENVS = {\n    "a": {"entry": "m:A"}\n}\n'
    _, node, _ = registry_of(source)
    new = scaffold.register(source, node, "b")
    assert new == 'X = 1\nENVS = {\n    "a": {"entry": "m:A"},\n    "b": {"entry": "puffer.envs.b.b:B"},\n}\n'
    source = 'ENVS = {"a": {"entry": "m:A"}}\n'
    with pytest.raises(scaffold.ScaffoldError, match="closing brace on a line of its own"):
        scaffold.register(source, registry_of(source)[1], "b")


def registry_of(source):
    import ast
    node = ast.parse(source).body[-1].value
    return source, node, ast.literal_eval(node)


def test_outside_a_checkout_is_refused(tmp_path):
    # The `puffer` command of this checkout's (editable) install, in a folder
    # that is no checkout: it must refuse, write nothing, and say why.
    for args, message in ((["new", "mine"], "is not inside a puffer project checkout"),
                          (["new", "mine", "--root", str(tmp_path)], "is not a puffer project checkout")):
        result = subprocess.run([sys.executable, "-m", "puffer", *args], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result
        assert result.stderr.startswith("puffer new: error: ") and message in result.stderr, result.stderr
        assert not any(tmp_path.iterdir())


def test_every_keyword_is_refused():
    for word in keyword.kwlist:
        if scaffold.NAME_PATTERN.match(word):
            with pytest.raises(scaffold.ScaffoldError):
                scaffold.check_name(word, REPO)
