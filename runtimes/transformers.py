"""A model held by Hugging Face transformers: a hub id or local directory, or a GGUF converted once.

On CUDA with `load_in_4bit` it is quantized by bitsandbytes (double quant, fp16 compute), as the
original served Llama 3.1 8B; on the CPU, where bitsandbytes cannot run, it loads in float32 (or the
`dtype` param). A GGUF is de-quantized by transformers (`gguf_file=`, ~30 s) and the result saved
under the model cache, so later starts load it in well under a second. Generation goes through its
continuous-batching engine (runtimes/transformers_engine.py: `max_sequences` at once), started
on the first job, so a process that only tokenizes or trains never starts its thread; on a CPU
with fbgemm's kernels it computes the logits with a float16 copy of the output layer
(`lm_head_dtype`, runtimes/transformers_head.py).
"""

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from model_registry import ModelSpec
from runtimes.chat_template import ChatTemplate
from runtimes.sequences import EngineRuntime
from runtimes.transformers_engine import TransformersEngine
from runtimes.transformers_head import Float16Head, cpu_head_dtype

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

log = logging.getLogger(__name__)

TRANSFORMERS_PARAMS = {
    "dtype",
    "n_ctx",
    "load_in_4bit",
    "bnb_4bit_use_double_quant",
    "bnb_4bit_compute_dtype",
    "adapter",
    "lm_head_dtype",
}


def _converted_dir(gguf: Path, cache_dir: Path) -> Path:
    return cache_dir / f"{gguf.stem}-transformers"


def _convert_gguf(gguf: Path, target: Path) -> None:
    log.info("converting %s for transformers into %s (first start only)", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The tensors are de-quantized already; only the GGUF marker stops save_pretrained.
    model.hf_quantizer = None
    del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(partial)
    partial.rename(target)


def load_source(spec: ModelSpec, weights: Path | None, cache_dir: Path) -> str:
    """Where from_pretrained reads: the converted GGUF directory, or the hub id / local directory."""
    if weights is None:
        return spec.weights
    target = _converted_dir(weights, cache_dir)
    if not target.exists():
        _convert_gguf(weights, target)
    return str(target)


def model_kwargs(spec: ModelSpec, cuda: bool) -> dict:
    unknown = set(spec.params) - TRANSFORMERS_PARAMS
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown transformers params {sorted(unknown)}")
    params = spec.params
    if cuda and spec.gpu_index is not None:
        kwargs: dict = {"device_map": {"": spec.gpu_index}}
        if params.get("load_in_4bit"):
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_use_double_quant=params.get("bnb_4bit_use_double_quant", True),
                bnb_4bit_compute_dtype=getattr(torch, params.get("bnb_4bit_compute_dtype", "float16")),
            )
        kwargs["dtype"] = getattr(torch, params.get("dtype", "float16"))
        return kwargs
    if spec.gpu_index is not None:
        log.warning(
            "model %s wants %s but CUDA is not available: using the CPU without 4-bit", spec.name, spec.device
        )
    return {"dtype": getattr(torch, params.get("dtype", "float32"))}


class TransformersRuntime(EngineRuntime):
    """Besides the chat runtime protocol, what LoRA training on top of it needs: `text_tokens`,
    `end_of_turn`, `pad_token_id`, `lora_model` and `gguf_base_dir`; and `close`.

    Its `adapter` (a PEFT LoRA directory, registry param) is the model's, one for every sequence it
    generates: another adapter is another registry model."""

    def __init__(self, spec: ModelSpec, weights: Path | None, cache_dir: Path) -> None:
        self.name = spec.name
        source = load_source(spec, weights, cache_dir)
        self._gguf_base_dir = Path(source) if weights is not None else None
        cuda = torch.cuda.is_available()
        kwargs = model_kwargs(spec, cuda)
        # float16 on a CPU with fbgemm's kernels, else the model's own (runtimes/transformers_head.py).
        self._head_dtype = cpu_head_dtype(spec.params.get("lm_head_dtype", "auto"), cuda, kwargs["dtype"])
        log.info("loading %s from %s with %s", spec.name, source, kwargs)
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        # The tokenizer switches a flag of its Rust core on each call (`split_special_tokens`): task
        # threads tokenizing prompts at once, and the engine decoding, take turns with it.
        self._tokenizer_lock = threading.Lock()
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if spec.params.get("adapter"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, spec.params["adapter"])
        self._model = model.eval()
        self.n_ctx = int(spec.params.get("n_ctx", 2048))
        self._template = ChatTemplate.for_model(
            {"tokenizer.chat_template": self._tokenizer.chat_template or ""},
            spec.chat_format,
            bos_token=self._tokenizer.bos_token or "",
            eos_token=self._tokenizer.eos_token or "",
        )
        markers = self._turn_markers()
        # The token that closes an assistant turn (what a fine-tune teaches the model to emit).
        self.end_of_turn: int = markers[0] if markers else self._tokenizer.eos_token_id
        self._stop_ids = sorted({self._tokenizer.eos_token_id, *markers} - {None})
        self.max_sequences = spec.max_sequences
        self._engine_lock = threading.Lock()

    @property
    def pad_token_id(self) -> int | None:
        """The tokenizer's padding token, None when it has none."""
        return self._tokenizer.pad_token_id

    @property
    def gguf_base_dir(self) -> Path | None:
        """The transformers directory the GGUF weights were converted into, None when the model was not
        a GGUF: a LoRA trained on this runtime exports to a GGUF LoRA against this directory."""
        return self._gguf_base_dir

    def lora_model(self, lora: "LoraConfig") -> "PeftModel":
        """The loaded model with a new, trainable LoRA adapter injected in place: from then on this
        runtime generates through the adapter too."""
        from peft import get_peft_model

        return get_peft_model(self._model, lora)

    def _turn_markers(self) -> list[int]:
        found = []
        for marker in ("<end_of_turn>", "<|eot_id|>", "<|im_end|>"):
            token = self._tokenizer.convert_tokens_to_ids(marker)
            if isinstance(token, int) and token != self._tokenizer.unk_token_id:
                found.append(token)
        return found

    def text_tokens(self, text: str, special: bool = False) -> list[int]:
        """The token ids of `text` without a BOS: plain text, or with `special` control tokens as markup."""
        with self._tokenizer_lock:
            return self._tokenizer(text, add_special_tokens=False, split_special_tokens=not special).input_ids

    def _new_engine(self) -> TransformersEngine:
        head = Float16Head(self._model) if self._head_dtype == "float16" else None
        return TransformersEngine(
            self._model,
            self._tokenizer,
            self._tokenizer_lock,
            self._stop_ids,
            self.max_sequences,
            self.name,
            head,
        )

    def close(self) -> None:
        """Stop the engine's thread (its sequences fail)."""
        self.close_engine()
