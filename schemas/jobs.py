"""What the API puts on a device queue: one chat job, self-contained and JSON-serialisable."""

from typing import Literal

from pydantic import BaseModel, Field

from schemas.events import SourceRef
from schemas.sampling import DEFAULTS

Role = Literal["system", "user", "assistant"]

# The Celery task name; the API sends by name so it never imports the worker's model code.
CHAT_TASK = "chat.generate"
# One item of a batch: the same job, its result kept on the item instead of a conversation.
BATCH_ITEM_TASK = "batch.generate_item"

# Celery priorities on the Redis transport: a lower number is served first (see jobs/keys.py).
# A chat taken over from a lost worker (its client waiting mid-reply) runs before any new chat, and
# a waiting interactive chat before any waiting batch item.
TAKEOVER_PRIORITY = 0
INTERACTIVE_PRIORITY = 3
BATCH_PRIORITY = 9


class ChatMessage(BaseModel):
    role: Role
    content: str
    prefill: bool = Field(
        default=False,
        description="last message only: the start of the reply, which the model continues (no turn closed or opened)",
    )
    raw: bool = Field(
        default=False,
        description="only message: a text completion's whole prompt, sent as it is (no chat template; "
        "control tokens in it are read as such, since the caller writes its own template)",
    )


# How many recent tokens (the end of the prompt, then the reply) the presence, frequency and
# repetition penalties look at, on every runtime.
PENALTY_LAST_N = 64


class SamplingParams(BaseModel):
    """What a job samples with; api/turns/sampling.py makes it from every request shape."""

    max_tokens: int = Field(ge=1)
    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    seed: int | None = None
    top_k: int = Field(default=DEFAULTS.top_k, ge=0, description="0: off")
    min_p: float = Field(default=DEFAULTS.min_p, ge=0, le=1)
    repeat_penalty: float = Field(default=DEFAULTS.repeat_penalty, gt=0, description="1: off")
    presence_penalty: float = DEFAULTS.presence_penalty
    frequency_penalty: float = DEFAULTS.frequency_penalty
    logit_bias: dict[int, float] = Field(default_factory=dict, description="token id -> added logit")
    stop: list[str] = Field(default_factory=list, description="the reply ends before any of these strings")
    logprobs: int | None = Field(
        default=None, ge=0, le=20, description="None: none; else each token's logprob and this many top ones"
    )
    grammar: str | None = Field(default=None, description="GBNF the reply must match (llama.cpp only)")


class ContextFit(BaseModel):
    """Lets the worker, which holds the tokenizer, drop the oldest messages between a pinned head (the
    character) and a pinned tail (the current exchange) until the prompt leaves room for the reply."""

    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=1, ge=0)


class ReplyTarget(BaseModel):
    """A reply that does not become a new message: another swipe of one, or the rest of one."""

    message_id: str
    mode: Literal["swipe", "continue"]


class ChatJob(BaseModel):
    job_id: str
    model: str
    messages: list[ChatMessage]
    sampling: SamplingParams
    conversation_id: str | None = None
    sources: list[SourceRef] = Field(default_factory=list, description="passages the prompt was grounded in")
    context_fit: ContextFit | None = None
    reply_to: ReplyTarget | None = None
    detach: bool = Field(
        default=False, description="finishes without its client; run again if its worker is lost"
    )
    quota: str | None = Field(
        default=None, description="the API key (its prefix) whose quotas count the job, until it ends"
    )

    @property
    def follows_turn(self) -> bool:
        """Its reply is a new message after the user's turn, which the API writes while it is queued."""
        return self.conversation_id is not None and self.reply_to is None
