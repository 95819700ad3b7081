"""What every model runtime offers the chat task, whatever engine is behind it."""

import inspect
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from runtimes.fair_share import Share
from schemas.events import TokenLogprob
from schemas.jobs import ChatMessage, SamplingParams

# Called with each new piece of text: `on_text(text)`, or `on_text(text, logprobs)` when the job asked
# for logprobs (one `TokenLogprob` per token id below), plus `token_ids=[...]` as a keyword when the
# callback has a `token_ids` parameter (or **kwargs): the ids of the reply tokens whose text the piece
# completes, in order. A piece always ends where a token's text does (except the last one before a stop
# string), so the pieces sent so far are exactly the text of the ids reported so far: what `Resume`
# continues from. A token whose text is held back (an incomplete UTF-8 character, a tail that may begin
# a stop string) is reported with the later piece that completes it. Returning False stops the generation.
OnText = Callable[..., bool]


@dataclass(frozen=True)
class Resume:
    """A reply to continue rather than start: the ids of its tokens already streamed (those reported
    with its pieces, in order) and their text (those pieces joined). The runtime prefills them after
    the prompt, as if it had generated them, and streams only what follows."""

    token_ids: tuple[int, ...]
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "token_ids", tuple(self.token_ids))


def resumed_seed(seed: int, resumed: int) -> int:
    """The seed of a reply resumed after `resumed` tokens: the job's own when it starts; at a resume,
    another one of its own (the draws made before the resume are not replayed, and drawing the first
    ones again would repeat their choices), the same for the same resume point."""
    return seed if not resumed else hash((seed, resumed)) & 0x7FFFFFFFFFFFFFFF


class PromptTooLongError(ValueError):
    """The prompt alone does not fit the model's context window."""


class InvalidSamplingError(ValueError):
    """The job's sampling cannot be applied to this model: a grammar llama.cpp refuses, a logit_bias
    token outside the vocabulary, a grammar on a runtime without grammars."""


@dataclass
class GenerationResult:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int  # the whole reply's, a resumed reply's tokens included


def text_sink(on_text: OnText) -> Callable[[str, list[TokenLogprob] | None, Sequence[int]], bool]:
    """`on_text` called as `(text, logprobs, token_ids)`, in the shape it takes (`OnText`): callers
    written before token ids existed keep working."""
    params = inspect.signature(on_text).parameters.values()
    takes_ids = any(p.name == "token_ids" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)

    def send(text: str, logprobs: list[TokenLogprob] | None, token_ids: Sequence[int]) -> bool:
        args = (text,) if logprobs is None else (text, logprobs)
        return on_text(*args, token_ids=list(token_ids)) if takes_ids else on_text(*args)

    return send


class ChatRuntime(Protocol):
    name: str
    n_ctx: int  # the context window, in tokens

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt's token ids: the chat template applied, message text tokenized as plain text."""
        ...

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: SamplingParams,
        on_text: OnText,
        resume: Resume | None = None,
        share: Share | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Stream a reply to `messages` through `on_text`; blocks until done or stopped. With `resume`,
        continue that reply: `sampling.max_tokens` and the result count the whole reply. `share`: whose
        slot it takes, where an engine shares its slots out between keys (runtimes/fair_share.py);
        `still_wanted()`, asked now and then while no text comes (a reply waiting for a slot), stops
        it when False."""
        ...

    def slot_for(
        self, share: Share, poll_s: float, keep_waiting: Callable[[], bool]
    ) -> AbstractContextManager[bool]:
        """Whether a job of `share` gets a slot (a free one, or one its key's fair share takes from
        another key's sequence), waiting for room while `keep_waiting()`, asked every `poll_s`, says
        so; the slot is held for the generation this thread starts within the block."""
        ...
