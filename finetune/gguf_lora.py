"""Convert a PEFT LoRA adapter to a GGUF LoRA that llama.cpp loads (`lora_path`).

llama.cpp's own `convert_lora_to_gguf.py` does the conversion; it is not installed with the
llama-cpp-python wheel but ships in its source distribution, so the sdist of the installed version
is fetched once from PyPI (pip's cache serves it after the first build) and the converter taken
from it.
"""

import logging
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

CONVERTER = "convert_lora_to_gguf.py"


class GgufConversionError(RuntimeError):
    """The converter could not be fetched or failed."""


def converter_dir(cache_dir: Path) -> Path:
    """The llama.cpp conversion scripts of the installed llama-cpp-python version, fetched once."""
    release = version("llama-cpp-python")
    target = cache_dir / f"llama.cpp-{release}"
    if (target / CONVERTER).exists():
        return target
    download = cache_dir / "sdist"
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(download),
         f"llama-cpp-python=={release}"],
        capture_output=True, text=True,
    )  # fmt: skip
    archives = sorted(download.glob(f"llama_cpp_python-{release}.tar.gz"))
    if fetched.returncode != 0 or not archives:
        raise GgufConversionError(
            f"could not fetch llama-cpp-python {release} sources: {fetched.stderr[-500:]}"
        )
    prefix = f"llama_cpp_python-{release}/vendor/llama.cpp/"
    with tarfile.open(archives[0]) as archive:
        members = [
            m for m in archive.getmembers()
            if m.name.startswith(prefix) and (m.name.count("/") == 3 and m.name.endswith(".py") or "/gguf-py/" in m.name)
        ]  # fmt: skip
        for member in members:
            member.name = member.name[len(prefix) :]
        archive.extractall(target, members=members, filter="data")
    return target


def convert_adapter(adapter_dir: Path, base_model_dir: Path, cache_dir: Path) -> Path:
    """Write adapter_dir/adapter.gguf from the PEFT adapter, against the base model's HF directory."""
    outfile = adapter_dir / "adapter.gguf"
    script = converter_dir(cache_dir) / CONVERTER
    result = subprocess.run(
        [sys.executable, str(script), "--base", str(base_model_dir), "--outfile", str(outfile), str(adapter_dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0 or not outfile.exists():
        raise GgufConversionError(f"convert_lora_to_gguf failed: {result.stderr[-1000:]}")
    log.info("GGUF LoRA written to %s", outfile)
    return outfile
