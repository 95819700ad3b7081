"""OpenAI's wire format for `/v1/models` and `/v1/chat/completions`, in one place.

A request's fields are validated like the rest of the API; a field this service does not implement
(`tools`, `audio`, ...) is kept aside (`model_extra`) so that the route refuses it by name
(api/openai/unsupported.py) instead of ignoring it.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events import TokenLogprob, Usage
from schemas.sampling import DEFAULTS

CHARACTER_PREFIX = "character:"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class RequestMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="the JSON schema the reply must match")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class SamplingRequest(BaseModel):
    """What /v1/chat/completions and /v1/completions both take: the model, the reply's length, the
    sampling knobs and streaming."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        min_length=1, description="a registry model, or `character:<name>` of a stored character"
    )
    # The sampling knobs default to this server's (schemas/sampling.py), not OpenAI's; null: the default.
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="none: the server's DEFAULT_MAX_TOKENS"
    )
    temperature: float | None = Field(default=DEFAULTS.temperature, ge=0.0, le=2.0)
    top_p: float | None = Field(default=DEFAULTS.top_p, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    n: int = Field(default=1, ge=1, le=8, description="choices, each its own job (seed + i with a seed)")
    # Beyond OpenAI's own: what llama.cpp's server and text-generation-webui take, and SillyTavern sends.
    top_k: int | None = Field(default=DEFAULTS.top_k, ge=0, le=1000, description="0: off")
    min_p: float | None = Field(default=DEFAULTS.min_p, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(
        default=DEFAULTS.repeat_penalty, gt=0.0, le=10.0, description="1: off"
    )
    presence_penalty: float | None = Field(default=DEFAULTS.presence_penalty, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=DEFAULTS.frequency_penalty, ge=-2.0, le=2.0)
    logit_bias: dict[int, Annotated[float, Field(ge=-100, le=100)]] | None = Field(
        default=None, max_length=300, description="token id -> bias added to its logit"
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("stop")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if any(not item for item in value):
            raise ValueError("stop sequences must not be empty")
        return value

    @property
    def reply_tokens(self) -> int | None:
        return self.max_tokens

    @property
    def top_logprob_count(self) -> int | None:
        """None: no logprobs; else each token's logprob and this many top candidates."""
        return None


class ChatCompletionRequest(SamplingRequest):
    messages: list[RequestMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096, description="wins over max_tokens")
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20, description="needs logprobs: true")
    response_format: ResponseFormat | None = None

    @property
    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def top_logprob_count(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail
