"""llama.cpp's own C++ `llama-server`, built once from the llama.cpp sources that the installed
llama-cpp-python's sdist vendors (so both run the same llama.cpp), cached under `data/bin/`.

The first build downloads the sdist with pip (`pip download --no-deps --no-binary :all:
llama-cpp-python==<installed version>`) and compiles the `llama-server` target with CMake (several
minutes on two cores); later runs reuse the binary.
"""

import logging
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from settings import PROJECT_ROOT

log = logging.getLogger(__name__)

BIN_DIR = PROJECT_ROOT / "data" / "bin"


def llama_server_binary(bin_dir: Path = BIN_DIR) -> Path:
    release = version("llama-cpp-python")
    binary = bin_dir / f"llama-server-{release}"
    if binary.exists():
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-server-build-") as tmp:
        work = Path(tmp)
        log.info("downloading the llama-cpp-python %s sdist", release)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={release}", "-d", str(work)],
            check=True, capture_output=True,
        )  # fmt: skip
        (sdist,) = work.glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        (source,) = work.glob("llama_cpp_python-*/vendor/llama.cpp")
        build = work / "build"
        log.info("building llama-server from %s (first run only, several minutes)", source)
        subprocess.run(
            ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF",
             "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
             "-DBUILD_SHARED_LIBS=OFF"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["cmake", "--build", str(build), "--target", "llama-server", "-j", "2"],
            check=True,
            capture_output=True,
        )
        (build / "bin" / "llama-server").rename(binary)
    return binary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(llama_server_binary())
