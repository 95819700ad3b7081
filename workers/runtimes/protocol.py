"""What every model runtime offers the chat task, whatever engine is behind it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from schemas.jobs import ChatMessage, SamplingParams

# Called with each new piece of text; returning False stops the generation (a cancel).
OnText = Callable[[str], bool]


class PromptTooLongError(ValueError):
    """The prompt alone does not fit the model's context window."""


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
