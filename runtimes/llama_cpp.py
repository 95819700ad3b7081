"""A GGUF model held by llama.cpp (llama-cpp-python), on a CUDA device when there is one, else the CPU.

The model is loaded once; generation goes through its continuous-batching engine
(`runtimes/llama_cpp_engine.py`), started on the first job, so a process that only tokenizes (the
tests') never creates a context.
"""

import logging
import threading
from pathlib import Path

import llama_cpp
from llama_cpp import _internals

from model_registry import ModelSpec
from runtimes.batch_invariance import decodes_alike
from runtimes.chat_template import ChatTemplate
from runtimes.cpu_share import threads_per_worker
from runtimes.llama_cpp_engine import EngineConfig, LlamaCppEngine
from runtimes.sequences import EngineRuntime
from schemas.jobs import ChatMessage
from settings import get_settings

log = logging.getLogger(__name__)

# Registry params, as llama-cpp-python's `Llama` names them (plus `repack`); anything else in
# `params` is refused at load.
MODEL_PARAMS = {"n_gpu_layers", "use_mmap", "use_mlock"}
CONTEXT_PARAMS = {"n_ctx", "n_batch", "n_threads", "n_threads_batch", "offload_kqv", "flash_attn"}
LLAMA_PARAMS = MODEL_PARAMS | CONTEXT_PARAMS | {"lora_path", "repack"}
GPU_ONLY_PARAMS = {"n_gpu_layers", "offload_kqv"}
DEFAULT_N_CTX = 2048
DEFAULT_N_BATCH = 512


def llama_kwargs(spec: ModelSpec, gpu_available: bool) -> dict:
    unknown = set(spec.params) - LLAMA_PARAMS
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown llama_cpp params {sorted(unknown)}")
    kwargs = dict(spec.params)
    # This worker's share of the host's cores, for generation and for prompt processing alike.
    kwargs.setdefault("n_threads", threads_per_worker(get_settings()))
    kwargs.setdefault("n_threads_batch", kwargs["n_threads"])
    if spec.gpu_index is not None and gpu_available:
        kwargs["main_gpu"] = spec.gpu_index
        kwargs["split_mode"] = llama_cpp.LLAMA_SPLIT_MODE_NONE
    else:
        if spec.gpu_index is not None:
            log.warning(
                "model %s wants %s but this llama.cpp build has no GPU offload: using the CPU",
                spec.name,
                spec.device,
            )
        for key in GPU_ONLY_PARAMS:
            kwargs.pop(key, None)
        kwargs["n_gpu_layers"] = 0
    return kwargs


def repack_setting(kwargs: dict) -> bool | None:
    """The registry's `repack`: True or False as given, None for `auto` (the default): repack where
    this CPU's repacked kernels keep a token's logits the same batched or alone (`decodes_alike`)."""
    value = kwargs.get("repack", "auto")
    if value == "auto" or isinstance(value, bool):
        return None if value == "auto" else value
    raise ValueError(f"repack must be true, false or auto, not {value!r}")


def _model_params(kwargs: dict, repack: bool):
    params = llama_cpp.llama_model_default_params()
    for key in MODEL_PARAMS & set(kwargs) | {"main_gpu", "split_mode"} & set(kwargs):
        setattr(params, key, kwargs[key])
    # llama.cpp's CPU weight repacking (llama-server's default; AMX or GEMM-friendly layouts).
    params.use_extra_bufts = repack
    return params


class LlamaCppRuntime(EngineRuntime):
    """Besides the chat runtime protocol, what the tests and the benchmark use: `text_tokens`,
    `reply_text`, `rendered_prompt`, `bos_text` and `close`."""

    def __init__(self, spec: ModelSpec, weights: Path) -> None:
        self.name = spec.name
        kwargs = llama_kwargs(spec, llama_cpp.llama_supports_gpu_offload())
        log.info("loading %s from %s with %s", spec.name, weights.name, kwargs)
        self._llm = self._load_repacked(weights, kwargs)
        self._engine_config = EngineConfig(
            n_ctx=kwargs.get("n_ctx", DEFAULT_N_CTX),
            n_batch=kwargs.get("n_batch", DEFAULT_N_BATCH),
            max_sequences=spec.max_sequences,
            n_threads=kwargs["n_threads"],
            n_threads_batch=kwargs["n_threads_batch"],
            model=spec.name,
            offload_kqv=kwargs.get("offload_kqv", True),
            flash_attn=kwargs.get("flash_attn", True),
            lora_path=kwargs.get("lora_path"),
        )
        self._template = ChatTemplate.for_model(
            self._llm.metadata(),
            spec.chat_format,
            bos_token=self._token_text(self._llm.token_bos()),
            eos_token=self._token_text(self._llm.token_eos()),
        )
        self._engine_lock = threading.Lock()

    def _load_repacked(self, weights: Path, kwargs: dict) -> _internals.LlamaModel:
        """The model with weight repacking as the registry says; with `auto` on the CPU, repacked
        unless the probe finds that this CPU's repacked kernels make a batch change a token's logits,
        and then loaded again without (README, "Same answer batched or alone")."""
        setting = repack_setting(kwargs)
        self.repacked = setting is not False
        llm = _internals.LlamaModel(
            path_model=str(weights), params=_model_params(kwargs, self.repacked), verbose=False
        )
        # Only flash attention makes answers batch-invariant at all, and only the CPU repacks. One
        # thread: each of ggml's CPU kernels computes an output whole on one thread, so the count
        # changes no bits, and a lone thread never spins at a barrier on a crowded host.
        probe = setting is None and kwargs.get("flash_attn", True) and not kwargs.get("n_gpu_layers")
        if probe and not decodes_alike(llm.model, n_threads=1, flash_attn=True):
            log.warning("%s: repacked weights decode a batch differently here: loading without", self.name)
            llm.close()
            self.repacked = False
            llm = _internals.LlamaModel(
                path_model=str(weights), params=_model_params(kwargs, False), verbose=False
            )
        log.info("%s: weight repacking %s", self.name, "on" if self.repacked else "off")
        return llm

    @property
    def n_ctx(self) -> int:
        """The context window of one sequence."""
        return self._engine_config.n_ctx

    @property
    def model(self):
        """The llama_model pointer (for probes that make a context of their own)."""
        return self._llm.model

    @property
    def n_threads(self) -> int:
        return self._engine_config.n_threads

    @property
    def bos_text(self) -> str:
        """The BOS token as text: a raw-completion server adds it to a text prompt itself."""
        return self._token_text(self._llm.token_bos())

    def _token_text(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def text_tokens(self, text: str, special: bool = False) -> list[int]:
        """The token ids of `text` without a BOS: plain text, or with `special` control tokens as markup."""
        return self._llm.tokenize(text.encode("utf-8"), False, special)

    def reply_text(self, token_ids: list[int]) -> str:
        """The text of a reply's tokens as the engine streams it (control tokens as nothing)."""
        return self._llm.detokenize(token_ids).decode("utf-8", errors="replace")

    def rendered_prompt(self, messages: list[ChatMessage]) -> str:
        """The prompt as one string, template markup included: what a raw-completion server is sent."""
        return "".join(segment.text for segment in self._template.segments(messages))

    def _new_engine(self) -> LlamaCppEngine:
        return LlamaCppEngine(self._llm.model, self._engine_config)

    def close(self) -> None:
        """Stop the engine and free the model now rather than when the process ends."""
        self.close_engine()
        self._llm.close()
