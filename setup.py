"""Builds libkiln.so and libkiln_runtime.so with CMake + Ninja and ships them in kiln/_lib/.

KILN_BUILD_DIR (default: build, relative to the repository root) is the CMake build
directory; an existing one is reused (ninja rebuilds only what changed). setuptools' own
files go to KILN_BUILD_DIR/python, so the source tree stays clean. The project's metadata
is in pyproject.toml; the version is the one in CMakeLists.txt.
"""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.path.join(ROOT, os.environ.get("KILN_BUILD_DIR", "build"))
SETUPTOOLS_DIR = os.path.join(BUILD_DIR, "python")
LIBRARIES = {"kiln_compiler_shared": "libkiln.so", "kiln_runtime_shared": "libkiln_runtime.so"}


def cmake_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(kiln VERSION ([0-9.]+)", f.read()).group(1)


def build_libraries():
    if not os.path.exists(os.path.join(BUILD_DIR, "build.ninja")):
        subprocess.check_call(["cmake", "-S", ROOT, "-B", BUILD_DIR, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"])
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL")
    subprocess.check_call(["ninja", "-C", BUILD_DIR, *(["-j", jobs] if jobs else []), *LIBRARIES])


class BuildPyWithLibraries(build_py):
    """build_py, plus the two shared libraries copied into kiln/_lib/ (symlinks resolved)."""

    def run(self):
        shutil.rmtree(os.path.join(self.build_lib, "kiln"), ignore_errors=True)  # no stale modules
        super().run()
        build_libraries()
        lib_dir = os.path.join(self.build_lib, "kiln", "_lib")
        os.makedirs(lib_dir, exist_ok=True)
        for name in LIBRARIES.values():
            shutil.copyfile(os.path.realpath(os.path.join(BUILD_DIR, name)), os.path.join(lib_dir, name))


class BinaryDistribution(Distribution):
    """The wheel holds native code: tag it for this platform, not py3-none-any."""

    def has_ext_modules(self):
        return True


os.makedirs(SETUPTOOLS_DIR, exist_ok=True)
setup(
    version=cmake_version(),
    cmdclass={"build_py": BuildPyWithLibraries},
    distclass=BinaryDistribution,
    options={"build": {"build_base": SETUPTOOLS_DIR}, "egg_info": {"egg_base": SETUPTOOLS_DIR}},
)
