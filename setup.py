"""Builds the C envs (envs/**/binding.pyx) and compiled trainer parts
(trainer/*.pyx), and maps the top-level folders into
the one package `puffer`: envs/ -> puffer.envs, trainer/ -> puffer.trainer,
models/ -> puffer.models, configs/ -> puffer.configs."""
import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

FOLDERS = {"puffer": "puffer", "puffer.envs": "envs", "puffer.trainer": "trainer",
           "puffer.models": "models", "puffer.configs": "configs"}

# -fno-semantic-interposition lets c_step inline into the binding's loop.
# PUFFER_SANITIZE=1 builds with AddressSanitizer and UBSan (tests/test_asan.py).
SANITIZE = os.environ.get("PUFFER_SANITIZE") == "1"
compile_args = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=undefined"] if SANITIZE else [
    "-O3", "-fno-math-errno", "-fno-semantic-interposition",
    # Keep short copy/clear loops over an observation inline instead of
    # turning them into memcpy/memset calls, which cost more for a few floats.
    "-fno-tree-loop-distribute-patterns"]
link_args = ["-fsanitize=address,undefined"] if SANITIZE else []


def extensions():
    for pyx in sorted(glob("envs/**/*.pyx", recursive=True) + glob("trainer/*.pyx")):
        module = "puffer." + os.path.splitext(pyx)[0].replace(os.sep, ".")
        # A binding finds its own header beside it; envs/ holds the shared ones.
        yield Extension(module, [pyx], include_dirs=["envs"],
                        extra_compile_args=compile_args, extra_link_args=link_args)


def packages():
    found = []
    for package, folder in FOLDERS.items():
        found.append(package)
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    return found


setup(
    packages=packages(),
    package_dir=FOLDERS,
    package_data={"puffer": ["templates/*"], "puffer.configs": ["*.toml"], "puffer.envs": ["*.h", "*.pxi", "**/*.h", "text/*.txt"]},
    ext_modules=cythonize(list(extensions()), include_path=["envs"], language_level=3, nthreads=os.cpu_count() or 1,
                          compiler_directives={"boundscheck": False, "wraparound": False,
                                               "cdivision": True}),
)
