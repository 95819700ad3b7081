"""The OpenAI chat API over the job stream: a request becomes a chat job per choice (`n`; a
`character:<name>` model brings the character's card before the client's messages), and the jobs'
events become `chat.completion.chunk`s ending in `[DONE]` (stream) or one `chat.completion`.

Stateless like OpenAI's API: the client sends the whole history, nothing is stored in MongoDB; the
job's log still holds the reply for a while (`GET /jobs/{X-Job-Id}`).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from api.http.errors import ApiError
from api.openai.errors import openai_error
from api.openai.sampling import choice_seeds
from api.streams.relay import JobStream
from api.turns.chat_messages import chat_job
from model_registry import get_registry
from mongo.characters import card_data, find_character_by_name
from prompts.assembly import character_prompt
from schemas.cards import CardData
from schemas.events import DoneData, ErrorData, JobEvent, TokenData, TokenLogprob, Usage
from schemas.jobs import ChatJob, ChatMessage
from schemas.openai import (
    CHARACTER_PREFIX,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
)
from settings import Settings

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


async def resolve_model(model: str, settings: Settings, user_id: str) -> tuple[str, CardData | None]:
    """The registry model that answers `model`, and the card of the character it plays, if any (the
    user's own of that name, else a public one)."""
    if model.startswith(CHARACTER_PREFIX):
        name = model[len(CHARACTER_PREFIX) :]
        character = await asyncio.to_thread(find_character_by_name, name, user_id)
        if character is None:
            raise ApiError(404, "model_not_found", f"no character named {name!r} (see /v1/models)")
        return settings.openai_character_model, card_data(character)
    if model not in get_registry():
        raise ApiError(404, "model_not_found", f"the model {model!r} does not exist (see /v1/models)")
    return model, None


def completion_jobs(
    body: ChatCompletionRequest,
    model: str,
    card: CardData | None,
    sampling: dict[str, Any],
    settings: Settings,
) -> list[ChatJob]:
    """One job per choice, each with its own seed; a character's card goes before the client's
    messages, laid out as on every other route."""
    messages = [
        ChatMessage(role="system" if message.role == "developer" else message.role, content=message.text)
        for message in body.messages
    ]
    fields = {}
    if card is not None:
        prompt = character_prompt(card, messages)
        messages, fields["context_fit"] = prompt.messages, prompt.context_fit
    return [
        chat_job(
            model,
            messages,
            settings,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            stop=body.stop,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=seed,
            sampling=sampling,
            **fields,
        )
        for seed in choice_seeds(body.seed, body.n)
    ]


def _finish_reason(ours: str) -> Literal["stop", "length"]:
    """OpenAI knows no `cancelled`: a job stopped on request ended where it was asked to."""
    return "length" if ours == "length" else "stop"


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


def _usage(usages: list[Usage]) -> Usage:
    """The prompt once (every choice has the same), the completions summed, as OpenAI counts `n`."""
    prompt = max((usage.prompt_tokens for usage in usages), default=0)
    completion = sum(usage.completion_tokens for usage in usages)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _logprobs(entries: list[TokenLogprob] | None) -> ChoiceLogprobs | None:
    return None if entries is None else ChoiceLogprobs(content=entries)


class CompletionWriter:
    """Turns the choices' job events into OpenAI objects with the same id, creation time and model name."""

    def __init__(self, job_id: str, model: str, n: int, logprobs: bool) -> None:
        self.id = f"chatcmpl-{job_id}"
        self.model = model
        self.n = n
        self.logprobs = logprobs
        self.created = int(time.time())

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return chunk.model_dump_json(exclude_none=True)

    async def chunks(self, streams: list[JobStream], include_usage: bool) -> AsyncIterator[str]:
        """SSE data lines: a role chunk per choice, one chunk per token, a finish chunk per choice,
        [usage], [DONE]. A choice that fails ends the whole stream with its error."""
        for index in range(self.n):
            yield self._chunk([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])
        usages: list[Usage] = []
        async with contextlib.aclosing(merged(streams)) as events:
            async for index, event in events:
                data = event.data
                if isinstance(data, TokenData):
                    logprobs = _logprobs(data.logprobs)
                    choice = ChunkChoice(index=index, delta=Delta(content=data.text), logprobs=logprobs)
                    yield self._chunk([choice])
                elif isinstance(data, DoneData):
                    finish = _finish_reason(data.finish_reason)
                    yield self._chunk([ChunkChoice(index=index, delta=Delta(), finish_reason=finish)])
                    usages.append(data.usage)
                elif isinstance(data, ErrorData):
                    status = ERROR_STATUS.get(data.code, 500)
                    yield openai_error(status, data.code, data.message).model_dump_json()
                    break
            else:
                if include_usage:
                    yield self._chunk([], _usage(usages))
        yield "[DONE]"

    async def completion(self, streams: list[JobStream]) -> ChatCompletion:
        """The whole reply; a choice that ends in an error raises it as an HTTP error."""
        pieces: list[list[str]] = [[] for _ in streams]
        logprobs: list[list[TokenLogprob]] = [[] for _ in streams]
        choices: list[Choice] = []
        usages: list[Usage] = []
        async with contextlib.aclosing(merged(streams)) as events:
            async for index, event in events:
                data = event.data
                if isinstance(data, TokenData):
                    pieces[index].append(data.text)
                    logprobs[index] += data.logprobs or []
                elif isinstance(data, ErrorData):
                    raise ApiError(ERROR_STATUS.get(data.code, 500), data.code, data.message)
                elif isinstance(data, DoneData):
                    message = AssistantMessage(content="".join(pieces[index]))
                    entries = _logprobs(logprobs[index] if self.logprobs else None)
                    finish = _finish_reason(data.finish_reason)
                    choices.append(
                        Choice(index=index, message=message, finish_reason=finish, logprobs=entries)
                    )
                    usages.append(data.usage)
        if len(choices) < len(streams):
            raise ApiError(500, "internal_error", "a job's stream ended without a final event")
        choices.sort(key=lambda choice: choice.index)
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=_usage(usages)
        )
