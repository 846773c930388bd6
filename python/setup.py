"""Builds kiln's native module with kiln's own CMake project and puts it into the wheel beside python/kiln/.

Environment:
  KILN_CMAKE_BUILD_DIR  CMake build directory (default: <repo>/build-pip); point it at an existing build to
                        reuse its compiled kiln library.
  KILN_WITH_CUDA        ON/OFF (default: ON when nvcc is found, as scripts/setup.sh decides).
  KILN_JOBS             parallel compile jobs (default: all cores).
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REPO = pathlib.Path(__file__).resolve().parent.parent


def _find(program, extra_dirs=("/opt/torch/.venv/bin", "/usr/local/cuda/bin")):
    found = shutil.which(program)
    if found:
        return found
    for d in extra_dirs:
        p = pathlib.Path(d) / program
        if p.exists():
            return str(p)
    return None


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        cmake = _find("cmake")
        if cmake is None:
            raise RuntimeError("kiln's Python module is built with CMake, which was not found (Debian: apt install cmake)")
        build_dir = pathlib.Path(os.environ.get("KILN_CMAKE_BUILD_DIR", REPO / "build-pip")).resolve()
        cuda = os.environ.get("KILN_WITH_CUDA") or ("ON" if _find("nvcc") else "OFF")
        env = dict(os.environ, CCACHE_BASEDIR=str(REPO), CCACHE_NOHASHDIR="1")
        args = [cmake, "-S", str(REPO), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                "-DCMAKE_CUDA_ARCHITECTURES=90", f"-DKILN_WITH_CUDA={cuda}", "-DKILN_BUILD_PYTHON=ON",
                f"-DKILN_PYTHON={sys.executable}"]
        ninja = _find("ninja")
        if ninja and not (build_dir / "CMakeCache.txt").exists():
            args += ["-G", "Ninja"]
        subprocess.run(args, check=True, env=env)
        jobs = os.environ.get("KILN_JOBS", str(os.cpu_count() or 2))
        subprocess.run([cmake, "--build", str(build_dir), "--target", "kiln_python", "-j", jobs], check=True, env=env)
        built = sorted((build_dir / "python" / "kiln").glob("_kiln*.so"))
        if not built:
            raise RuntimeError(f"the build finished but left no _kiln*.so in {build_dir / 'python' / 'kiln'}")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[-1], target)


setup(ext_modules=[Extension("kiln._kiln", sources=[])], cmdclass={"build_ext": CMakeBuild})
