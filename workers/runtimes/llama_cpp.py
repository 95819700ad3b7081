"""A GGUF model held by llama.cpp (llama-cpp-python), on a CUDA device when there is one, else the CPU."""

import logging
import os
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

from model_registry import ModelSpec
from schemas.jobs import ChatMessage, SamplingParams
from workers.runtimes.chat_template import ChatTemplate
from workers.runtimes.protocol import GenerationResult, OnText, PromptTooLongError

log = logging.getLogger(__name__)

# Registry params passed to Llama() as they are; anything else in `params` is refused at load.
LLAMA_PARAMS = {
    "lora_path",
    "n_ctx",
    "n_batch",
    "n_threads",
    "n_gpu_layers",
    "offload_kqv",
    "use_mmap",
    "use_mlock",
    "flash_attn",
}
GPU_ONLY_PARAMS = {"n_gpu_layers", "offload_kqv"}


def llama_kwargs(spec: ModelSpec, gpu_available: bool) -> dict:
    unknown = set(spec.params) - LLAMA_PARAMS
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown llama_cpp params {sorted(unknown)}")
    kwargs = dict(spec.params)
    kwargs.setdefault("n_threads", os.cpu_count() or 1)
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


class LlamaCppRuntime:
    """Besides the chat runtime protocol, what the tests and the benchmark use: `text_tokens`,
    `rendered_prompt` and `close`."""

    def __init__(self, spec: ModelSpec, weights: Path) -> None:
        self.name = spec.name
        kwargs = llama_kwargs(spec, llama_cpp.llama_supports_gpu_offload())
        log.info("loading %s from %s with %s", spec.name, weights.name, kwargs)
        self._llm = Llama(model_path=str(weights), verbose=False, **kwargs)
        self._template = ChatTemplate.for_model(
            self._llm.metadata,
            spec.chat_format,
            bos_token=self._token_text(self._llm.token_bos()),
            eos_token=self._token_text(self._llm.token_eos()),
        )

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    def _token_text(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def text_tokens(self, text: str, special: bool = False) -> list[int]:
        """The token ids of `text` without a BOS: plain text, or with `special` control tokens as markup."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def rendered_prompt(self, messages: list[ChatMessage]) -> str:
        """The prompt as one string, template markup included: what a raw-completion server is sent."""
        return "".join(segment.text for segment in self._template.segments(messages))

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        tokens: list[int] = []
        for segment in self._template.segments(messages):
            tokens += self.text_tokens(segment.text, special=segment.is_markup)
        return tokens

    def generate(
        self, messages: list[ChatMessage], sampling: SamplingParams, on_text: OnText
    ) -> GenerationResult:
        prompt = self.prompt_tokens(messages)
        room = self._llm.n_ctx() - len(prompt)
        if room < 1:
            raise PromptTooLongError(
                f"the prompt is {len(prompt)} tokens, the context window {self._llm.n_ctx()}"
            )
        finish_reason = "length"
        completion_tokens = 0
        chunks = self._llm.create_completion(
            prompt,
            max_tokens=min(sampling.max_tokens, room),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
            stop=sampling.stop or None,
            stream=True,
        )
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                completion_tokens += 1
                if not on_text(choice["text"]):
                    finish_reason = "cancelled"
                    break
            if choice["finish_reason"]:
                finish_reason = choice["finish_reason"]
        return GenerationResult(finish_reason, len(prompt), completion_tokens)

    def close(self) -> None:
        """Free the model now rather than when the process ends."""
        self._llm.close()
