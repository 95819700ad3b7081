"""A model held by Hugging Face transformers: a hub id or local directory, or a GGUF converted once.

On CUDA with `load_in_4bit` it is quantized by bitsandbytes (double quant, fp16 compute), as the
original served Llama 3.1 8B; on the CPU, where bitsandbytes cannot run, it loads in float32 (or the
`dtype` param). A GGUF is de-quantized by transformers (`gguf_file=`, ~30 s) and the result saved
under the model cache, so later starts load it in well under a second. Generation runs in the
calling thread and streams token by token through a streamer that calls `on_text` directly.
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from model_registry import ModelSpec
from schemas.jobs import ChatMessage, SamplingParams
from workers.runtimes.chat_template import ChatTemplate
from workers.runtimes.logprobs import token_logprob
from workers.runtimes.protocol import GenerationResult, OnText, PromptTooLongError
from workers.runtimes.transformers_sampling import StepLogprobs, logits_processors

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
}


class TokenStreamer(BaseStreamer):
    """Hands each new token's text to `on_text` and remembers why generation should stop.

    It holds back an incomplete UTF-8 character and any tail that may begin a stop string, so a
    stop string never reaches the client (as with llama.cpp and OpenAI): the text before it does,
    and generation ends there. `cancelled` when `on_text` asked to stop, `hit_stop` at a stop string.
    With a `recorder`, each piece goes with the logprobs of the tokens it completes (`top_n` each).
    """

    def __init__(
        self,
        tokenizer,
        on_text: OnText,
        stops: list[str],
        recorder: StepLogprobs | None = None,
        top_n: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.recorder = recorder
        self.top_n = top_n
        self.logprobs: list = []  # of the tokens whose text was not sent yet
        self.on_text = on_text
        self.stops = [stop for stop in stops if stop]
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0
        self.pieces = 0
        self.cancelled = False
        self.hit_stop = False
        self._prompt_seen = False

    @property
    def stopped(self) -> bool:
        return self.cancelled or self.hit_stop

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        if self.stopped:  # generate() may produce one more token before it sees the stop
            return
        new = value.reshape(-1).tolist()
        self.ids.extend(new)
        if self.recorder is not None:
            self.logprobs += [
                token_logprob(self.recorder.last, token, self.top_n, self._piece) for token in new
            ]
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if self.text.endswith("\ufffd"):
            return
        hits = [at for stop in self.stops if (at := self.text.find(stop, self.sent)) >= 0]
        if hits:
            self.hit_stop = True
            self._send(min(hits))
        else:
            self._send(len(self.text) - self._held_back())

    def end(self) -> None:
        """Generation ended without a stop string: what was held back is the reply's tail."""
        if not self.stopped:
            self._send(len(self.text))

    def _held_back(self) -> int:
        """The length of the longest tail of the text that begins a stop string."""
        return max(
            (size for stop in self.stops for size in range(1, len(stop)) if self.text.endswith(stop[:size])),
            default=0,
        )

    def _send(self, upto: int) -> None:
        if upto <= self.sent:
            return
        piece, self.sent = self.text[self.sent : upto], upto
        self.pieces += 1
        if self.recorder is None:
            sent = self.on_text(piece)
        else:
            sent, self.logprobs = self.on_text(piece, self.logprobs), []
        if not sent:
            self.cancelled = True

    def _piece(self, token: int) -> bytes:
        return self.tokenizer.decode([token]).encode("utf-8")


class StopWhenAsked(StoppingCriteria):
    def __init__(self, streamer: TokenStreamer) -> None:
        self.streamer = streamer

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full(
            (input_ids.shape[0],), self.streamer.stopped, dtype=torch.bool, device=input_ids.device
        )


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


class TransformersRuntime:
    """Besides the chat runtime protocol, what LoRA training on top of it needs: `text_tokens`,
    `end_of_turn`, `pad_token_id`, `lora_model` and `gguf_base_dir`."""

    def __init__(self, spec: ModelSpec, weights: Path | None, cache_dir: Path) -> None:
        self.name = spec.name
        source = load_source(spec, weights, cache_dir)
        self._gguf_base_dir = Path(source) if weights is not None else None
        kwargs = model_kwargs(spec, torch.cuda.is_available())
        log.info("loading %s from %s with %s", spec.name, source, kwargs)
        self._tokenizer = AutoTokenizer.from_pretrained(source)
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
        return self._tokenizer(text, add_special_tokens=False, split_special_tokens=not special).input_ids

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        return self._template.tokens(messages, lambda text, markup: self.text_tokens(text, special=markup))

    def generate(
        self, messages: list[ChatMessage], sampling: SamplingParams, on_text: OnText
    ) -> GenerationResult:
        prompt = self.prompt_tokens(messages)
        room = self.n_ctx - len(prompt)
        if room < 1:
            raise PromptTooLongError(f"the prompt is {len(prompt)} tokens, the context window {self.n_ctx}")
        max_new_tokens = min(sampling.max_tokens, room)
        recorder = StepLogprobs() if sampling.logprobs is not None else None
        processors = logits_processors(sampling, self._model.config.get_text_config().vocab_size, recorder)
        streamer = TokenStreamer(self._tokenizer, on_text, sampling.stop, recorder, sampling.logprobs or 0)
        sample = sampling.temperature > 0
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            output = self._model.generate(
                torch.tensor([prompt], device=self._model.device),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long, device=self._model.device),
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None,
                top_k=None,
                eos_token_id=self._stop_ids,
                pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                streamer=streamer,
                logits_processor=processors,
                stopping_criteria=[StopWhenAsked(streamer)],
            )
        generated = output.shape[1] - len(prompt)
        if streamer.cancelled:
            finish_reason = "cancelled"
        elif streamer.hit_stop:
            finish_reason = "stop"
        elif generated >= max_new_tokens and int(output[0, -1]) not in self._stop_ids:
            finish_reason = "length"
        else:
            finish_reason = "stop"
        return GenerationResult(finish_reason, len(prompt), streamer.pieces)
