"""What the API puts on a device queue: one chat job, self-contained and JSON-serialisable."""

from typing import Literal

from pydantic import BaseModel, Field

from schemas.events import SourceRef

Role = Literal["system", "user", "assistant"]

# The Celery task name; the API sends by name so it never imports the worker's model code.
CHAT_TASK = "chat.generate"
# One item of a batch: the same job, its result kept on the item instead of a conversation.
BATCH_ITEM_TASK = "batch.generate_item"

# Celery priorities on the Redis transport: a lower number is served first (see schemas/redis_keys.py).
# A waiting interactive chat always runs before any waiting batch item.
INTERACTIVE_PRIORITY = 0
BATCH_PRIORITY = 9


class ChatMessage(BaseModel):
    role: Role
    content: str


class SamplingParams(BaseModel):
    max_tokens: int = Field(ge=1)
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    stop: list[str] = Field(default_factory=list, description="the reply ends before any of these strings")


class ChatJob(BaseModel):
    job_id: str
    model: str
    messages: list[ChatMessage]
    sampling: SamplingParams
    conversation_id: str | None = None
    sources: list[SourceRef] = Field(default_factory=list, description="passages the prompt was grounded in")
