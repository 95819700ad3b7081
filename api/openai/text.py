"""Text completion over the job stream: each prompt (times `n`) becomes a chat job whose one message is
the raw prompt (no chat template: the client wrote its own, control tokens included), on the same
path as every chat (queue, engine, quotas, ownership, resume through `GET /jobs/{X-Job-Id}`).

Two APIs write the jobs' events: OpenAI's legacy completions (`text_completion` objects, choice
`prompt_index * n + i` as OpenAI numbers them) and llama-server's native `/completion` (`content`
chunks, the last one `stop: true`).
"""

import math
from typing import Any

from api.http.errors import ApiError
from api.openai.chat import finish_reason_of
from api.openai.choices import ChoiceWriter, Finished, OpenAIWriter, total_usage
from api.turns.chat_messages import chat_job
from api.turns.sampling import choice_samplings
from schemas.errors import ErrorDetail, ErrorResponse
from schemas.events import TokenLogprob, Usage
from schemas.jobs import ChatJob, ChatMessage, SamplingParams
from schemas.openai import CHARACTER_PREFIX
from schemas.text_completion import (
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionProbability,
    CompletionRequest,
    LlamaCompletion,
    TokenProbability,
)
from settings import Settings


def text_model(body: CompletionRequest, settings: Settings) -> str:
    """The model a text completion asks for, or the server's default; a character needs the chat API."""
    model = body.model or settings.openai_character_model
    if model.startswith(CHARACTER_PREFIX):
        raise ApiError(
            400,
            "unsupported_parameter",
            f"{model!r} plays a character card, which needs /v1/chat/completions; "
            "a text completion takes a registry model (see /v1/models)",
            fields=["model"],
        )
    return model


def refuse_text_unsupported(body: CompletionRequest) -> None:
    """What OpenAI's legacy API has and this service does not: refused by name."""
    if body.echo:
        raise ApiError(400, "unsupported_parameter", "echo is not supported by this server", fields=["echo"])
    if body.suffix:
        raise ApiError(
            400,
            "unsupported_parameter",
            "suffix (insertion) is not supported by this server",
            fields=["suffix"],
        )
    if body.best_of is not None and body.best_of != body.n:
        raise ApiError(
            400,
            "unsupported_parameter",
            "best_of other than n is not supported by this server",
            fields=["best_of"],
        )


def text_jobs(body: CompletionRequest, model: str, sampling: SamplingParams) -> list[ChatJob]:
    """`n` jobs per prompt, each with its own seed."""
    return [
        chat_job(model, [ChatMessage(role="user", content=prompt, raw=True)], sampling=choice)
        for prompt in body.prompts
        for choice in choice_samplings(sampling, body.n)
    ]


class TextWriter(OpenAIWriter):
    """OpenAI's `text_completion` objects: one chunk per token, a finish chunk per choice, [usage], [DONE]."""

    def __init__(self, job_id: str, model: str, logprobs: bool) -> None:
        super().__init__(f"cmpl-{job_id}", model, logprobs)
        self._offsets: dict[int, int] = {}  # each choice's text so far, in characters

    def _chunk(self, choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        completion = Completion(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return completion.model_dump_json(exclude_none=True)

    def _logprobs(self, index: int, entries: list[TokenLogprob]) -> CompletionLogprobs:
        """The legacy shape; `text_offset` counts from the start of the choice's text."""
        offsets = []
        for entry in entries:
            offsets.append(self._offsets.get(index, 0))
            self._offsets[index] = offsets[-1] + len(entry.token)
        return CompletionLogprobs(
            tokens=[entry.token for entry in entries],
            token_logprobs=[entry.logprob for entry in entries],
            top_logprobs=[{top.token: top.logprob for top in entry.top_logprobs} for entry in entries],
            text_offset=offsets,
        )

    def token(self, index: int, text: str, logprobs: list[TokenLogprob] | None) -> str:
        entries = None if logprobs is None else self._logprobs(index, logprobs)
        return self._chunk([CompletionChoice(text=text, index=index, logprobs=entries)])

    def finish(self, index: int, finish_reason: str, usage: Usage) -> str:
        finish = finish_reason_of(finish_reason)
        return self._chunk([CompletionChoice(text="", index=index, finish_reason=finish)])

    def whole(self, choices: list[Finished]) -> Completion:
        return Completion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[
                CompletionChoice(
                    text=choice.text,
                    index=choice.index,
                    logprobs=self._logprobs(choice.index, choice.logprobs) if self.logprobs else None,
                    finish_reason=finish_reason_of(choice.finish_reason),
                )
                for choice in choices
            ],
            usage=total_usage([choice.usage for choice in choices]),
        )


def _probabilities(entries: list[TokenLogprob] | None) -> list[CompletionProbability] | None:
    if entries is None:
        return None
    return [
        CompletionProbability(
            content=entry.token,
            probs=[
                TokenProbability(tok_str=top.token, prob=math.exp(top.logprob)) for top in entry.top_logprobs
            ],
        )
        for entry in entries
    ]


class LlamaWriter(ChoiceWriter):
    """llama-server's `/completion`: `{"content", "stop": false}` per token, then the `stop: true` one
    with the counts; an error as `{"error": {...}}`. One prompt, one choice."""

    def __init__(self, model: str, logprobs: bool) -> None:
        self.model = model
        self.logprobs = logprobs

    def _final(
        self, text: str, finish_reason: str, usage: Usage, probabilities: Any = None
    ) -> LlamaCompletion:
        return LlamaCompletion(
            content=text,
            stop=True,
            model=self.model,
            # A stop string ends a reply as its end-of-turn token does: both are `eos` here.
            stop_type="limit" if finish_reason == "length" else "eos",
            tokens_predicted=usage.completion_tokens,
            tokens_evaluated=usage.prompt_tokens,
            completion_probabilities=probabilities,
        )

    def token(self, index: int, text: str, logprobs: list[TokenLogprob] | None) -> str:
        chunk = LlamaCompletion(
            content=text, stop=False, model=self.model, completion_probabilities=_probabilities(logprobs)
        )
        return chunk.model_dump_json(exclude_none=True)

    def finish(self, index: int, finish_reason: str, usage: Usage) -> str:
        return self._final("", finish_reason, usage).model_dump_json(exclude_none=True)

    def error(self, status: int, code: str, message: str) -> str:
        return ErrorResponse(error=ErrorDetail(code=code, message=message)).model_dump_json(exclude_none=True)

    def whole(self, choices: list[Finished]) -> LlamaCompletion:
        (choice,) = choices
        probabilities = _probabilities(choice.logprobs) if self.logprobs else None
        return self._final(choice.text, choice.finish_reason, choice.usage, probabilities)
