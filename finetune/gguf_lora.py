"""Convert a PEFT LoRA adapter to a GGUF LoRA that llama.cpp loads (`lora_path`).

llama.cpp's own `convert_lora_to_gguf.py` does the conversion; it is not installed with the
llama-cpp-python wheel but ships in its source distribution, so the sdist of the installed version
is fetched once from PyPI and the converter taken from it. The sdist is pinned by its SHA-256 (pip
`--require-hashes`): code that runs on the training worker is never taken unverified, and a version
without a pinned digest is refused until one is added here.
"""

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

CONVERTER = "convert_lora_to_gguf.py"

# SHA-256 of the llama-cpp-python sdist on PyPI, per version (`pip hash` of the .tar.gz).
SDIST_SHA256 = {
    "0.3.16": "34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6",
}


class GgufConversionError(RuntimeError):
    """The converter could not be fetched or failed."""


def converter_dir(cache_dir: Path) -> Path:
    """The llama.cpp conversion scripts of the installed llama-cpp-python version, fetched once."""
    release = version("llama-cpp-python")
    target = cache_dir / f"llama.cpp-{release}"
    if (target / CONVERTER).exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory() as download:
        _extract_converter(_pinned_sdist(release, Path(download)), release, partial)
    partial.rename(target)
    return target


def _pinned_sdist(release: str, download: Path) -> Path:
    """The sdist of `release`, downloaded by pip, which refuses it unless its SHA-256 is the pinned one."""
    digest = SDIST_SHA256.get(release)
    if digest is None:
        raise GgufConversionError(
            f"llama-cpp-python {release} has no pinned sdist SHA-256 in finetune/gguf_lora.py; add the "
            f"digest PyPI lists for llama_cpp_python-{release}.tar.gz to export GGUF LoRAs"
        )
    requirement = download / "requirements.txt"
    requirement.write_text(f"llama-cpp-python=={release} --hash=sha256:{digest}\n")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
         "-d", str(download), "-r", str(requirement)],
        capture_output=True, text=True,
    )  # fmt: skip
    archives = sorted(download.glob(f"llama_cpp_python-{release}.tar.gz"))
    if fetched.returncode != 0 or not archives:
        raise GgufConversionError(
            f"could not fetch llama-cpp-python {release} sources: {fetched.stderr[-500:]}"
        )
    return archives[0]


def _extract_converter(sdist: Path, release: str, target: Path) -> None:
    prefix = f"llama_cpp_python-{release}/vendor/llama.cpp/"
    with tarfile.open(sdist) as archive:
        members = [
            m for m in archive.getmembers()
            if m.name.startswith(prefix) and (m.name.count("/") == 3 and m.name.endswith(".py") or "/gguf-py/" in m.name)
        ]  # fmt: skip
        for member in members:
            member.name = member.name[len(prefix) :]
        archive.extractall(target, members=members, filter="data")


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
