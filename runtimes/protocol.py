"""What every model runtime offers the chat task, whatever engine is behind it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from schemas.jobs import ChatMessage, SamplingParams

# Called with each new piece of text, `on_text(text)`, or `on_text(text, logprobs)` when the job asked
# for logprobs (one `TokenLogprob` per token the text completes); returning False stops the generation.
OnText = Callable[..., bool]


class PromptTooLongError(ValueError):
    """The prompt alone does not fit the model's context window."""


class InvalidSamplingError(ValueError):
    """The job's sampling cannot be applied to this model: a grammar llama.cpp refuses, a logit_bias
    token outside the vocabulary, a grammar on a runtime without grammars."""


@dataclass
class GenerationResult:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class ChatRuntime(Protocol):
    name: str
    n_ctx: int  # the context window, in tokens

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt's token ids: the chat template applied, message text tokenized as plain text."""
        ...

    def generate(
        self, messages: list[ChatMessage], sampling: SamplingParams, on_text: OnText
    ) -> GenerationResult:
        """Stream a reply to `messages` through `on_text`; blocks until done or stopped."""
        ...
