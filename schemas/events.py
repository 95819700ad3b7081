"""The events of a job's stream, as published by the worker and relayed to the client as SSE.

Both sides use these models: the worker dumps a `JobEvent` as JSON, the API validates it back
(pydantic's JSON parser costs about what `json.loads` does, and dumping `data` for SSE less than
`json.dumps`)."""

from typing import Literal

from pydantic import BaseModel, Field

FinishReason = Literal["stop", "length", "cancelled", "error"]

# Why a job ended with `error`: the one vocabulary, for the worker's failures and for the ends the
# API gives a job on its worker's behalf.
JobErrorCode = Literal[
    # the worker's
    "prompt_too_long",  # the prompt leaves no room for the reply in the model's context window
    "model_not_loaded",  # the worker does not hold the job's model
    "invalid_sampling",  # the model cannot sample with these parameters (e.g. a bad grammar)
    "generation_failed",  # anything else the model raised
    "redis_unavailable",  # a token could not be published: the stream has ended
    # the API's, ending the job for its client
    "no_worker",  # no live worker serves the job's queue
    "queue_timeout",  # no worker started the job in time
    "worker_lost",  # the worker process running it stopped beating
    "worker_timeout",  # the worker is alive but sent nothing for too long
    "shutting_down",  # the API is stopping: the stream ends before its connection does
]


class StartedData(BaseModel):
    worker: str
    process: str | None = Field(
        default=None, description="the worker process's heartbeat member (workers/heartbeat.py)"
    )
    attempt: int = Field(
        default=1,
        description="the job's attempt: above 1, a worker took the job over and continues its reply",
    )


class TopLogprob(BaseModel):
    """One candidate token at a step, in OpenAI's shape: its text, log probability and UTF-8 bytes."""

    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    """A generated token and the most likely tokens of its step (only when the job asked for logprobs)."""

    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class TokenData(BaseModel):
    text: str
    index: int
    logprobs: list[TokenLogprob] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="one entry per token this text completes, when the job asked for logprobs",
    )


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class SourceRef(BaseModel):
    """A retrieved passage an answer was grounded in (`google_access`)."""

    dataset: str
    row: int
    title: str
    score: float


class DoneData(BaseModel):
    finish_reason: FinishReason
    usage: Usage = Field(default_factory=Usage)
    message_id: str | None = None
    sources: list[SourceRef] = Field(default_factory=list)


class ErrorData(BaseModel):
    code: JobErrorCode
    message: str


class JobEvent(BaseModel):
    """One message on the job's pub/sub channel.

    `id` is the event's position in the client's stream (0, 1, ...); `started` is internal (id -1):
    it tells the API the job has left the queue and is not relayed.
    """

    id: int
    event: Literal["started", "token", "done", "error"]
    # Read back member by member, tokens first: no two members share their required fields, so only the
    # right one fits, and a token (nearly every event) costs one try, not one per member (smart mode).
    data: TokenData | DoneData | ErrorData | StartedData = Field(union_mode="left_to_right")

    @property
    def is_final(self) -> bool:
        return self.event in ("done", "error")
