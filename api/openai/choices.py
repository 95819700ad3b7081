"""The choices' job events, merged and written out: one loop for a streamed answer and one for a whole
answer, shared by every completion API this service speaks (OpenAI's chat and text completions,
llama-server's `/completion`). Each API is a `ChoiceWriter` that only says how its objects look.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from api.http.errors import ApiError
from api.openai.errors import openai_error
from api.streams.relay import JobStream
from schemas.events import DoneData, ErrorData, JobEvent, TokenData, TokenLogprob, Usage

# HTTP status of a job's error code, when it ends a non-streamed completion (else 500).
ERROR_STATUS = {
    "prompt_too_long": 400,
    "no_worker": 503,
    "queue_timeout": 503,
    "worker_timeout": 503,
    "worker_lost": 503,
    "redis_unavailable": 503,
    "invalid_sampling": 400,
}


async def merged(streams: list[JobStream]) -> AsyncIterator[tuple[int, JobEvent]]:
    """The events of several jobs' streams as they come, each with its stream's index, until every
    stream has ended; leaving early closes them all (which cancels the unfinished jobs)."""
    arrivals: asyncio.Queue[tuple[int, JobEvent | BaseException]] = asyncio.Queue()

    async def pump(index: int, stream: JobStream) -> None:
        try:
            async for event in stream.events():
                await arrivals.put((index, event))
        except Exception as exc:
            await arrivals.put((index, exc))

    pumps = [asyncio.ensure_future(pump(index, stream)) for index, stream in enumerate(streams)]
    try:
        running = len(streams)
        while running:
            index, event = await arrivals.get()
            if isinstance(event, BaseException):
                raise event
            running -= event.is_final
            yield index, event
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def total_usage(usages: list[Usage]) -> Usage:
    """The prompt once (every choice of a prompt has the same), the completions summed, as OpenAI
    counts `n`."""
    prompt = max((usage.prompt_tokens for usage in usages), default=0)
    completion = sum(usage.completion_tokens for usage in usages)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


@dataclass
class Finished:
    """One choice's whole reply."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)


class ChoiceWriter:
    """The loops; a subclass gives the lines of a stream and the object of a whole answer."""

    def opening(self) -> list[str]:
        return []

    def token(self, index: int, text: str, logprobs: list[TokenLogprob] | None) -> str:
        raise NotImplementedError

    def finish(self, index: int, finish_reason: str, usage: Usage) -> str | None:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> str:
        raise NotImplementedError

    def usage(self, usage: Usage) -> str | None:
        """The line that ends a stream whose client asked for usage (None: this API has none)."""
        return None

    def ending(self) -> list[str]:
        return []

    def whole(self, choices: list[Finished]) -> Any:
        raise NotImplementedError

    async def chunks(self, streams: list[JobStream], include_usage: bool = False) -> AsyncIterator[str]:
        """SSE data lines, tokens as they come; a choice that fails ends the whole stream with its error."""
        for line in self.opening():
            yield line
        usages: list[Usage] = []
        failed = False
        async with contextlib.aclosing(merged(streams)) as events:
            async for index, event in events:
                data = event.data
                if isinstance(data, TokenData):
                    yield self.token(index, data.text, data.logprobs)
                elif isinstance(data, DoneData):
                    usages.append(data.usage)
                    line = self.finish(index, data.finish_reason, data.usage)
                    if line is not None:
                        yield line
                elif isinstance(data, ErrorData):
                    yield self.error(ERROR_STATUS.get(data.code, 500), data.code, data.message)
                    failed = True
                    break
        line = self.usage(total_usage(usages)) if include_usage and not failed else None
        if line is not None:
            yield line
        for line in self.ending():
            yield line

    async def completion(self, streams: list[JobStream]) -> Any:
        """The whole answer; a choice that ends in an error raises it as an HTTP error."""
        choices = [Finished(index) for index in range(len(streams))]
        done = 0
        async with contextlib.aclosing(merged(streams)) as events:
            async for index, event in events:
                data = event.data
                if isinstance(data, TokenData):
                    choices[index].text += data.text
                    choices[index].logprobs += data.logprobs or []
                elif isinstance(data, ErrorData):
                    raise ApiError(ERROR_STATUS.get(data.code, 500), data.code, data.message)
                elif isinstance(data, DoneData):
                    choices[index].finish_reason = data.finish_reason
                    choices[index].usage = data.usage
                    done += 1
        if done < len(streams):
            raise ApiError(500, "internal_error", "a job's stream ended without a final event")
        return self.whole(choices)


class OpenAIWriter(ChoiceWriter):
    """What OpenAI's chat and text completions share: the same id, creation time and model on every
    chunk, errors as OpenAI's error object, usage as a chunk without choices, and [DONE] last."""

    def __init__(self, completion_id: str, model: str, logprobs: bool) -> None:
        self.id = completion_id
        self.model = model
        self.logprobs = logprobs
        self.created = int(time.time())

    def _chunk(self, choices: list, usage: Usage | None = None) -> str:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> str:
        return openai_error(status, code, message).model_dump_json()

    def usage(self, usage: Usage) -> str:
        return self._chunk([], usage)

    def ending(self) -> list[str]:
        return ["[DONE]"]
