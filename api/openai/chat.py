"""The OpenAI chat API over the job stream: a request becomes a chat job (a `character:<name>` model
brings the character's card before the client's messages), and the job's events become
`chat.completion.chunk`s ending in `[DONE]` (stream) or one `chat.completion`.

Stateless like OpenAI's API: the client sends the whole history, nothing is stored in MongoDB; the
job's log still holds the reply for a while (`GET /jobs/{X-Job-Id}`).
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

from api.http.errors import ApiError
from api.openai.errors import openai_error
from api.streams.relay import JobStream
from api.turns.chat_messages import chat_job
from model_registry import get_registry
from mongo.characters import card_data, find_character_by_name
from prompts.assembly import character_prompt
from schemas.cards import CardData
from schemas.events import DoneData, ErrorData, TokenData, Usage
from schemas.jobs import ChatJob, ChatMessage
from schemas.openai import (
    CHARACTER_PREFIX,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
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


def completion_job(
    body: ChatCompletionRequest, model: str, card: CardData | None, settings: Settings
) -> ChatJob:
    """A character's card goes before the client's messages, laid out as on every other route."""
    messages = [
        ChatMessage(role="system" if message.role == "developer" else message.role, content=message.text)
        for message in body.messages
    ]
    fields = {}
    if card is not None:
        prompt = character_prompt(card, messages)
        messages, fields["context_fit"] = prompt.messages, prompt.context_fit
    return chat_job(
        model,
        messages,
        settings,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=body.stop,
        **body.model_dump(include={"temperature", "top_p", "seed"}),
        **fields,
    )


def _finish_reason(ours: str) -> Literal["stop", "length"]:
    """OpenAI knows no `cancelled`: a job stopped on request ended where it was asked to."""
    return "length" if ours == "length" else "stop"


class CompletionWriter:
    """Turns one job's events into OpenAI objects with the same id, creation time and model name."""

    def __init__(self, job_id: str, model: str) -> None:
        self.id = f"chatcmpl-{job_id}"
        self.model = model
        self.created = int(time.time())

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return chunk.model_dump_json(exclude_none=True)

    async def chunks(self, stream: JobStream, include_usage: bool) -> AsyncIterator[str]:
        """SSE data lines: a role chunk, one chunk per token, the finish chunk, [usage], [DONE]."""
        yield self._chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
        async for event in stream.events():
            data = event.data
            if isinstance(data, TokenData):
                yield self._chunk([ChunkChoice(delta=Delta(content=data.text))])
            elif isinstance(data, DoneData):
                finish = _finish_reason(data.finish_reason)
                yield self._chunk([ChunkChoice(delta=Delta(), finish_reason=finish)])
                if include_usage:
                    yield self._chunk([], data.usage)
            elif isinstance(data, ErrorData):
                status = ERROR_STATUS.get(data.code, 500)
                yield openai_error(status, data.code, data.message).model_dump_json()
        yield "[DONE]"

    async def completion(self, stream: JobStream) -> ChatCompletion:
        """The whole reply; a job that ends in an error raises it as an HTTP error."""
        pieces: list[str] = []
        async for event in stream.events():
            data = event.data
            if isinstance(data, TokenData):
                pieces.append(data.text)
            elif isinstance(data, ErrorData):
                raise ApiError(ERROR_STATUS.get(data.code, 500), data.code, data.message)
            elif isinstance(data, DoneData):
                choice = Choice(
                    message=AssistantMessage(content="".join(pieces)),
                    finish_reason=_finish_reason(data.finish_reason),
                )
                return ChatCompletion(
                    id=self.id, created=self.created, model=self.model, choices=[choice], usage=data.usage
                )
        raise ApiError(500, "internal_error", "the job's stream ended without a final event")
