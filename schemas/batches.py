"""Batch jobs on the wire: the items a client submits, the progress it polls, the result lines it reads."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.chat import GenerationParams
from schemas.events import ErrorData, Usage

ItemState = Literal["pending", "running", "complete", "cancelled", "error"]
ITEM_STATES: tuple[ItemState, ...] = ("pending", "running", "complete", "cancelled", "error")
BatchState = Literal["queued", "running", "completed", "cancelled"]

CharacterName = Annotated[str, Field(min_length=1, max_length=100)]


class InlineCharacter(BaseModel):
    """A character given in the item itself rather than stored."""

    model_config = ConfigDict(extra="forbid")

    name: CharacterName
    description: str = Field(default="", max_length=8000)
    greeting: str = Field(default="", max_length=4000)


class DialogueTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=8000)


class BatchItemRequest(BaseModel):
    """One character dialogue job: the character answers the last (user) turn of `messages`."""

    model_config = ConfigDict(extra="forbid")

    custom_id: str | None = Field(default=None, max_length=200, description="echoed in the item's result")
    model: str = Field(default="lumimaid", description="a model of the registry")
    character: CharacterName | InlineCharacter = Field(
        description="the name of a stored character, or {name, description, greeting}"
    )
    messages: list[DialogueTurn] = Field(min_length=1, max_length=200)
    params: GenerationParams = Field(default_factory=GenerationParams)

    @field_validator("messages")
    @classmethod
    def _ends_with_the_user(cls, messages: list[DialogueTurn]) -> list[DialogueTurn]:
        if messages[-1].role != "user":
            raise ValueError("the last message must be the user's: the character replies to it")
        return messages


class BatchRequest(BaseModel):
    """The JSON form of a submission (JSONL sends one item per line instead)."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemRequest] = Field(min_length=1)


class BatchCounts(BaseModel):
    pending: int = 0
    running: int = 0
    complete: int = 0
    cancelled: int = 0
    error: int = 0


class BatchProgress(BaseModel):
    id: str
    state: BatchState
    total: int
    counts: BatchCounts
    created_at: datetime
    cancelled_at: datetime | None = None


class BatchResult(BaseModel):
    """One line of `GET /batches/{id}/results`: an item, whatever its state (read from the stored item)."""

    model_config = ConfigDict(from_attributes=True)

    index: int
    custom_id: str | None
    job_id: str
    state: ItemState
    text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: ErrorData | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @field_validator("usage", "error", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None  # an item not finished (or not failed) has an empty sub-document
