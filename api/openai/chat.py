"""The OpenAI chat API over the job stream: a request becomes a chat job per choice (`n`; a
`character:<name>` model brings the character's card before the client's messages), and the jobs'
events become `chat.completion.chunk`s ending in `[DONE]` (stream) or one `chat.completion`.

Stateless like OpenAI's API: the client sends the whole history, nothing is stored in MongoDB; the
job's log still holds the reply for a while (`GET /jobs/{X-Job-Id}`).
"""

import asyncio
from typing import Literal

from api.http.errors import ApiError
from api.openai.choices import Finished, OpenAIWriter, total_usage
from api.turns.chat_messages import chat_job
from api.turns.sampling import choice_samplings
from model_registry import get_registry
from mongo.characters import card_data, find_character_by_name
from prompts.assembly import character_prompt
from schemas.cards import CardData
from schemas.events import TokenLogprob, Usage
from schemas.jobs import ChatJob, ChatMessage, SamplingParams
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
    sampling: SamplingParams,
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
        chat_job(model, messages, sampling=choice, **fields) for choice in choice_samplings(sampling, body.n)
    ]


def finish_reason_of(ours: str) -> Literal["stop", "length"]:
    """OpenAI knows no `cancelled`: a job stopped on request ended where it was asked to."""
    return "length" if ours == "length" else "stop"


class ChatWriter(OpenAIWriter):
    """`chat.completion.chunk`s (a role chunk per choice, one per token, a finish chunk per choice,
    [usage], [DONE]) or one `chat.completion`, with the same id, creation time and model name."""

    def __init__(self, job_id: str, model: str, n: int, logprobs: bool) -> None:
        super().__init__(f"chatcmpl-{job_id}", model, logprobs)
        self.n = n

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return chunk.model_dump_json(exclude_none=True)

    def opening(self) -> list[str]:
        return [
            self._chunk([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])
            for index in range(self.n)
        ]

    def token(self, index: int, text: str, logprobs: list[TokenLogprob] | None) -> str:
        entries = None if logprobs is None else ChoiceLogprobs(content=logprobs)
        return self._chunk([ChunkChoice(index=index, delta=Delta(content=text), logprobs=entries)])

    def finish(self, index: int, finish_reason: str, usage: Usage) -> str:
        finish = finish_reason_of(finish_reason)
        return self._chunk([ChunkChoice(index=index, delta=Delta(), finish_reason=finish)])

    def whole(self, choices: list[Finished]) -> ChatCompletion:
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[
                Choice(
                    index=choice.index,
                    message=AssistantMessage(content=choice.text),
                    finish_reason=finish_reason_of(choice.finish_reason),
                    logprobs=ChoiceLogprobs(content=choice.logprobs) if self.logprobs else None,
                )
                for choice in choices
            ],
            usage=total_usage([choice.usage for choice in choices]),
        )
