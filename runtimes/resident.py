"""The models a worker process holds: loaded once when the process starts, shared by every task.

Models whose weights and load parameters are equal share one loaded instance (in the embedded
default `lumimaid` and `llama` are the same GGUF, loaded once).
"""

import json
import logging
import time
from collections.abc import Callable

from model_registry import ModelSpec
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.metrics import MODEL_LOAD_SECONDS
from runtimes.model_files import is_weights_file, verified_weights
from runtimes.protocol import ChatRuntime
from runtimes.sequences import EngineRuntime
from runtimes.synthetic import SyntheticRuntime
from settings import Settings

log = logging.getLogger(__name__)

_runtimes: dict[str, ChatRuntime] = {}


class ModelNotLoadedError(LookupError):
    """A job named a model this worker process does not hold."""


def _load_key(spec: ModelSpec) -> str:
    return json.dumps(
        [spec.runtime, spec.weights, spec.device, spec.chat_format, spec.params], sort_keys=True
    )


def _load(spec: ModelSpec, settings: Settings) -> ChatRuntime:
    if spec.runtime == "synthetic":
        return SyntheticRuntime(spec)
    if spec.runtime == "llama_cpp":
        runtime = LlamaCppRuntime(spec, verified_weights(spec, settings.model_cache_dir))
        runtime.engine()  # its context and KV cache now, not on the first job
        return runtime
    # Imported here: torch is heavy, and a llama.cpp-only worker never needs it.
    from runtimes.transformers import TransformersRuntime

    weights = verified_weights(spec, settings.model_cache_dir) if is_weights_file(spec) else None
    runtime = TransformersRuntime(spec, weights, settings.model_cache_dir)
    runtime.engine()  # its thread and first forward pass now, not on the first job
    return runtime


def load_models(specs: list[ModelSpec], settings: Settings) -> None:
    loaded: dict[str, ChatRuntime] = {}
    for spec in specs:
        key = _load_key(spec)
        if key not in loaded:
            started = time.perf_counter()
            loaded[key] = _load(spec, settings)
            seconds = time.perf_counter() - started
            MODEL_LOAD_SECONDS.labels(spec.name).set(seconds)
            log.info("model %s loaded in %.1fs", spec.name, seconds)
        _runtimes[spec.name] = loaded[key]


def expect_arrivals(arriving: Callable[[], bool]) -> None:
    """Tell each loaded engine how to learn that jobs are on their way to it (`EngineRuntime`)."""
    for runtime in _runtimes.values():
        if isinstance(runtime, EngineRuntime):
            runtime.expect_arrivals(arriving)


def runtime_for(model: str) -> ChatRuntime:
    try:
        return _runtimes[model]
    except KeyError:
        raise ModelNotLoadedError(f"this worker does not hold model {model!r}") from None


def loaded_models() -> list[str]:
    return sorted(_runtimes)
