"""Find a model's weights on disk and refuse any file whose SHA-256 is not the registry's."""

import hashlib
import importlib
import logging
import time
from pathlib import Path

from model_registry import ModelSpec
from settings import PROJECT_ROOT

log = logging.getLogger(__name__)

PYPI_PREFIX = "pypi:"


class ModelFileError(RuntimeError):
    """The weights are missing or are not the file the registry names."""


def is_weights_file(spec: ModelSpec) -> bool:
    """A single file to check (a GGUF, or one shipped in a wheel) rather than a hub id or directory."""
    return spec.weights.startswith(PYPI_PREFIX) or spec.weights.endswith(".gguf")


def resolve_weights(spec: ModelSpec, cache_dir: Path) -> Path:
    """`pypi:<module>` assembles a GGUF shipped in a wheel (once, into cache_dir); else a path."""
    if spec.weights.startswith(PYPI_PREFIX):
        module = importlib.import_module(spec.weights[len(PYPI_PREFIX) :])
        target = cache_dir / module.MODEL_NAME
        if not target.exists():
            log.info("assembling %s into %s", module.MODEL_NAME, target)
            module.assemble(target)
        return target
    path = Path(spec.weights)
    return path if path.is_absolute() else PROJECT_ROOT / path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def verified_weights(spec: ModelSpec, cache_dir: Path) -> Path:
    path = resolve_weights(spec, cache_dir)
    if not path.is_file():
        raise ModelFileError(f"model {spec.name!r}: weights file {path} does not exist")
    if spec.sha256 is None:
        log.warning("model %s: no sha256 in the registry, %s is loaded unchecked", spec.name, path)
        return path
    started = time.perf_counter()
    actual = sha256_of(path)
    if actual != spec.sha256.lower():
        raise ModelFileError(
            f"model {spec.name!r}: {path} has sha256 {actual}, the registry expects {spec.sha256}; refusing to load"
        )
    log.info("model %s: sha256 of %s verified in %.1fs", spec.name, path.name, time.perf_counter() - started)
    return path
