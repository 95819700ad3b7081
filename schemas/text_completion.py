"""Text completion on the wire: OpenAI's legacy `/v1/completions` and llama-server's native
`/completion`, `/tokenize`, `/detokenize` and `/props`.

Both completion routes take the same request (`CompletionRequest`: the chat route's sampling surface
and a raw prompt); what SillyTavern's Text Completion adds for other backends is brought to it first
(schemas/textgen_fields.py).
"""

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from schemas.events import Usage
from schemas.openai import SamplingRequest
from schemas.textgen_fields import normalised

# Longer than OpenAI's 4: a text-completion client stops on its template's turn markers and names.
MAX_STOPS = 16


class CompletionRequest(SamplingRequest):
    model: str | None = Field(
        default=None, min_length=1, description="a registry model; none: the server's default"
    )
    prompt: str | list[str] = Field(
        description="sent as it is, without the chat template (control tokens in it are read as such)"
    )
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOPS)
    logprobs: int | None = Field(
        default=None, ge=0, le=20, description="each token's logprob and this many top ones"
    )
    echo: bool = Field(default=False, description="not supported: refused when true")
    suffix: str | None = Field(default=None, description="not supported: refused when set")
    best_of: int | None = Field(default=None, ge=1, le=8, description="only equal to n")

    @model_validator(mode="before")
    @classmethod
    def _textgen_fields(cls, data: object) -> object:
        return normalised(data)

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else self.prompt

    @property
    def top_logprob_count(self) -> int | None:
        return self.logprobs


class CompletionLogprobs(BaseModel):
    """The legacy API's logprobs: one entry per token in each list."""

    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class TokenProbability(BaseModel):
    tok_str: str
    prob: float


class CompletionProbability(BaseModel):
    """llama-server's `n_probs` answer for one token: its text and its most likely alternatives."""

    content: str
    probs: list[TokenProbability]


class LlamaCompletion(BaseModel):
    """llama-server's `/completion` answer, or one of its stream's chunks (`stop` true on the last)."""

    content: str
    stop: bool
    model: str
    stop_type: Literal["none", "eos", "limit"] = "none"
    tokens_predicted: int = 0
    tokens_evaluated: int = 0
    completion_probabilities: list[CompletionProbability] | None = None


class TokenizeRequest(BaseModel):
    content: str = Field(max_length=1_000_000)
    add_special: bool = Field(default=False, description="put the BOS first, as a prompt gets it")
    with_pieces: bool = False
    model: str | None = Field(default=None, description="a registry model; none: the server's default")


class TokenPiece(BaseModel):
    id: int
    piece: str


class TokenizeResponse(BaseModel):
    tokens: list[int] | list[TokenPiece]


class DetokenizeRequest(BaseModel):
    tokens: list[int] = Field(max_length=100_000)
    model: str | None = None


class DetokenizeResponse(BaseModel):
    content: str


class Props(BaseModel):
    """What llama-server's `/props` says of the model a client is talking to."""

    default_generation_settings: dict[str, Any]
    total_slots: int
    model_path: str
    chat_template: str = ""
