"""A runtime without a model, for measuring the relay alone: it emits tokens at a fixed rate, each
token's text being the time it was emitted, so a client can measure what the relay adds. Having no
tokenizer, it counts a prompt's words as its tokens, and a reply's token ids are their places in it."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from model_registry import ModelSpec
from runtimes.fair_share import Share
from runtimes.protocol import GenerationResult, OnText, Resume, text_sink
from schemas.jobs import ChatMessage, SamplingParams


class SyntheticRuntime:
    def __init__(self, spec: ModelSpec) -> None:
        self.name = spec.name
        self.interval_s = 1.0 / float(spec.params.get("tokens_per_s", 20))
        self.n_ctx = int(spec.params.get("n_ctx", 1_000_000))

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        return [0] * sum(len(message.content.split()) for message in messages)

    @contextmanager
    def slot_for(self, share: Share, poll_s: float, keep_waiting: Callable[[], bool]) -> Iterator[bool]:
        yield True  # every job runs at once

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: SamplingParams,
        on_text: OnText,
        resume: Resume | None = None,
        share: Share | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Its token ids are their places in the reply: a resumed reply goes on from the next one.
        Every job runs at once (no slots to share)."""
        prompt_tokens = len(self.prompt_tokens(messages))
        send = text_sink(on_text)
        due = time.monotonic()
        for count in range(len(resume.token_ids) if resume else 0, sampling.max_tokens):
            due += self.interval_s
            time.sleep(max(0.0, due - time.monotonic()))
            if not send(f"{time.time():.6f} ", None, [count]):
                return GenerationResult("cancelled", prompt_tokens, count + 1)
        return GenerationResult("length", prompt_tokens, sampling.max_tokens)
