"""`puffer new NAME`: writes a working skeleton env into a puffer checkout.

The skeleton is a small, learnable "move to the target" env made from the
templates in puffer/templates/ (placeholders {{name}}, {{Name}}, {{NAME}}):

    envs/NAME/NAME.h        the env in C: struct, c_reset, c_step, c_close
    envs/NAME/binding.pyx   the Cython binding (includes envs/vecenv.pxi)
    envs/NAME/NAME.py       the Python class, which checks the options
    envs/NAME/__init__.py
    configs/NAME.toml       its training config
    tests/test_NAME.py      its own tests

and registers it: one line in the ENVS dict of puffer/__init__.py. Nothing
is written unless every check passes (a valid, free name, inside a checkout).
Then `pip install -e . --no-build-isolation` (or, in an editable checkout,
`python setup.py build_ext --inplace`) builds it, and `puffer train NAME`,
`puffer bench NAME` and `pytest tests/test_NAME.py` run it.
See docs/writing-an-env.md.
"""
import argparse
import ast
import keyword
import os
import re
import sys
from importlib import resources
from pathlib import Path

MAX_NAME_LENGTH = 32
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")

# Files that make a folder a puffer checkout (the tree that setup.py builds).
PROJECT_MARKERS = ("setup.py", "envs/puffer.h", "envs/vecenv.pxi", "puffer/__init__.py",
                   "configs/defaults.toml")

# Template -> where it goes, relative to the project root.
TEMPLATES = {
    "env.h.tmpl": "envs/{name}/{name}.h",
    "binding.pyx.tmpl": "envs/{name}/binding.pyx",
    "env.py.tmpl": "envs/{name}/{name}.py",
    None: "envs/{name}/__init__.py",  # empty
    "config.toml.tmpl": "configs/{name}.toml",
    "test_env.py.tmpl": "tests/test_{name}.py",
}

# Names the generated code would collide with: the shared header and binding
# loop (envs/puffer.h, envs/vecenv.pxi), the binding module itself, and the
# type names the binding and the class module already use.
RESERVED_NAMES = {"puffer", "vecenv", "binding"}
RESERVED_CLASS_NAMES = {"Env", "Obs", "Act", "Log", "VecEnv", "PufferEnv"}

# Headers that envs/NAME/NAME.h would shadow: setup.py puts envs/NAME/ on the
# include path, where the compiler looks before the system folders, so an env
# named `time` would replace <time.h> for Python.h and puffer.h. The C standard
# headers, and the others that Python.h and Cython's code include on Linux.
C_HEADERS = {
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
    "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool",
    "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time",
    "uchar", "wchar", "wctype", "alloca", "endian", "features", "pthread", "sched", "strings",
    "syslimits", "unistd", "fcntl", "dirent", "dlfcn", "poll", "semaphore", "termios", "malloc",
    "memory", "python", "pyconfig",
}


class ScaffoldError(ValueError):
    """`puffer new` refused: the message says why; nothing was written."""


def class_name(name):
    """move_to_target -> MoveToTarget."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def is_project_root(folder):
    return all((Path(folder) / marker).is_file() for marker in PROJECT_MARKERS)


def find_root(start=None):
    """The puffer checkout holding `start` (default: the current directory):
    the nearest folder at or above it with setup.py, envs/puffer.h,
    envs/vecenv.pxi, puffer/__init__.py and configs/defaults.toml."""
    start = Path(start or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if is_project_root(folder):
            return folder
    raise ScaffoldError(
        f"{start} is not inside a puffer project checkout (no folder at or above it has "
        f"{', '.join(PROJECT_MARKERS)}). `puffer new` writes C sources into the source tree "
        f"and needs it to build them: run it inside a checkout of the puffer repository "
        f"(installed with `pip install -e .`), or pass --root PATH_TO_CHECKOUT.")


def check_root(root):
    root = Path(root).resolve()
    if not root.is_dir():
        raise ScaffoldError(f"--root {root}: no such folder")
    missing = [m for m in PROJECT_MARKERS if not (root / m).is_file()]
    if missing:
        raise ScaffoldError(f"--root {root} is not a puffer project checkout: it lacks "
                            f"{', '.join(missing)}")
    return root


def registry(root):
    """(source, the ENVS dict node, its value) of root/puffer/__init__.py."""
    path = root / "puffer" / "__init__.py"
    source = path.read_text()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "ENVS" for t in targets) \
                and isinstance(node.value, ast.Dict):
            try:
                return source, node.value, ast.literal_eval(node.value)
            except ValueError:
                raise ScaffoldError(f"{path}: ENVS is not a plain dict of literals, so `puffer new` "
                                    f"cannot add to it") from None
    raise ScaffoldError(f"{path} has no `ENVS = {{...}}` dict to register the env in")


def shadowed_header(name):
    """The system header that envs/NAME/NAME.h would hide, or None."""
    return f"<{name}.h>" if name in C_HEADERS else None


def check_name(name, root):
    """Raises ScaffoldError unless `name` is a valid env name that `root` has
    not taken; returns the project-relative paths that would be written."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"invalid env name {name!r}: it must be a lowercase Python identifier (a letter "
            f"a-z, then letters a-z, digits and underscores), since it names the folder "
            f"envs/NAME/, the module puffer.envs.NAME and the C header NAME.h")
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"invalid env name {name!r}: {len(name)} characters, at most "
                            f"{MAX_NAME_LENGTH} allowed")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"invalid env name {name!r}: it is a Python keyword and cannot "
                            f"name a module")
    if name in RESERVED_NAMES or class_name(name) in RESERVED_CLASS_NAMES:
        raise ScaffoldError(f"invalid env name {name!r}: reserved (it would collide with "
                            f"puffer's own envs/puffer.h, vecenv.pxi, binding module or the "
                            f"type names Env, Obs, Act, Log, VecEnv, PufferEnv)")
    header = shadowed_header(name)
    if header:
        raise ScaffoldError(f"invalid env name {name!r}: envs/{name}/{name}.h would shadow the "
                            f"system header {header} when C code includes it")
    _, _, envs = registry(root)
    if name in envs:
        raise ScaffoldError(f"env name {name!r} is taken: puffer/__init__.py already registers "
                            f"it in ENVS as {envs[name]['entry']!r}")
    folder = root / "envs" / name
    if folder.exists():
        raise ScaffoldError(f"env name {name!r} is taken: {folder} already exists")
    paths = [target.format(name=name) for target in TEMPLATES.values()]
    for relative in paths:
        if (root / relative).exists():
            raise ScaffoldError(f"env name {name!r} is taken: {root / relative} already exists")
    return paths


def template_folder(root):
    """The templates of the checkout being written to, else of this puffer."""
    local = root / "puffer" / "templates"
    return local if local.is_dir() else resources.files("puffer") / "templates"


def render(text, name):
    text = (text.replace("{{name}}", name).replace("{{Name}}", class_name(name))
            .replace("{{NAME}}", name.upper()))
    leftover = re.search(r"\{\{\w*\}\}", text)
    assert leftover is None, f"unknown template placeholder {leftover.group()}"
    return text


def registry_line(name):
    return f'    "{name}": {{"entry": "puffer.envs.{name}.{name}:{class_name(name)}"}},\n'


def register(source, dict_node, name):
    """`source` (puffer/__init__.py) with NAME added as the last entry of ENVS."""
    lines = source.splitlines(keepends=True)
    close_line = dict_node.end_lineno - 1  # 0-based line of the closing brace
    if lines[close_line][:dict_node.end_col_offset - 1].strip():
        raise ScaffoldError("cannot register the env: puffer/__init__.py's ENVS must end with "
                            "its closing brace on a line of its own")
    if dict_node.values:
        # The last entry needs a trailing comma before ours follows it.
        last = dict_node.values[-1]
        row, col = last.end_lineno - 1, last.end_col_offset
        between = "".join(lines[row:close_line])[col:] if row < close_line else ""
        if not between.lstrip().startswith(","):
            lines[row] = lines[row][:col] + "," + lines[row][col:]
    lines.insert(close_line, registry_line(name))
    return "".join(lines)


def new_env(name, root=None, cwd=None):
    """Writes the skeleton of env `name` into the checkout `root` (default: the
    one holding `cwd`) and registers it. Returns the list of files written
    (relative to the root); raises ScaffoldError, writing nothing, if the name
    is invalid or taken or there is no checkout."""
    root = check_root(root) if root is not None else find_root(cwd)
    paths = check_name(name, root)
    source, dict_node, _ = registry(root)
    registered = register(source, dict_node, name)
    templates = template_folder(root)
    contents = {}
    for template, target in TEMPLATES.items():
        text = "" if template is None else render((templates / template).read_text(), name)
        contents[target.format(name=name)] = text
    created_dirs, written = [], []
    init_path = root / "puffer" / "__init__.py"
    try:
        for relative in paths:
            path = root / relative
            for parent in reversed(path.relative_to(root).parents[:-1]):
                if not (root / parent).exists():
                    (root / parent).mkdir()
                    created_dirs.append(root / parent)
            with open(path, "x") as f:  # never overwrite
                written.append(path)
                f.write(contents[relative])
        init_path.write_text(registered)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for folder in reversed(created_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass
        if init_path.read_text() != source:
            init_path.write_text(source)
        raise
    return paths + ["puffer/__init__.py"]


def installed_from(root):
    """Whether the running `puffer` package is the one in `root` (an editable install)."""
    import puffer
    return Path(puffer.__file__).resolve().parent == (root / "puffer").resolve()


def main(argv=None, print_fn=print):
    parser = argparse.ArgumentParser(
        prog="puffer new", allow_abbrev=False,
        description="Write a working skeleton env (a small 'move to the target' task in C, its "
                    "binding, Python class, config and tests) into this puffer checkout and "
                    "register it. See docs/writing-an-env.md.")
    parser.add_argument("name", help="the env's name: a lowercase Python identifier, "
                                     f"at most {MAX_NAME_LENGTH} characters")
    parser.add_argument("--root", help="the puffer checkout to write into (default: the one "
                                       "holding the current directory)")
    args = parser.parse_args(argv)
    root = check_root(args.root) if args.root else find_root()
    written = new_env(args.name, root=root)
    print_fn(f"puffer new: wrote env {args.name!r} into {root}:")
    for relative in written[:-1]:
        print_fn(f"  {relative}")
    print_fn(f"  puffer/__init__.py (registered in ENVS: {registry_line(args.name).strip()})")
    where = "" if Path.cwd().resolve() == root else f"cd {root} && "
    print_fn("\nnext:")
    print_fn(f"  {where}pip install -e . --no-build-isolation   # builds it "
             f"(in an editable checkout, `python setup.py build_ext --inplace` is enough)")
    print_fn(f"  pytest tests/test_{args.name}.py tests/test_api.py -k {args.name}")
    print_fn(f"  puffer train {args.name}")
    print_fn(f"  puffer bench {args.name}")
    if not installed_from(root):
        print_fn(f"\nnote: the puffer you ran is not this checkout's ({sys.modules['puffer'].__file__}); "
                 f"`pip install -e . --no-build-isolation` in {root} makes it so")
    return written


if __name__ == "__main__":
    try:
        main()
    except ScaffoldError as error:
        sys.exit(f"puffer new: error: {error}")
