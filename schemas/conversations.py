"""The conversation routes' bodies."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.chat import GenerationParams
from schemas.common import ObjectIdStr


class ConversationCreate(BaseModel):
    character_id: ObjectIdStr
    greeting_index: int = Field(
        default=0, ge=0, description="0: the card's first_mes; n: its n-th alternate greeting"
    )
    user_name: str = Field(
        default="User", min_length=1, max_length=100, description="what {{user}} stands for"
    )


class TurnRequest(GenerationParams):
    input_data: str = Field(min_length=1, max_length=500, description="the user's message")


class SwipeChoice(BaseModel):
    swipe_id: int = Field(ge=0, description="which alternative of the last reply becomes current")


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    status: str
    finish_reason: str | None = None
    swipes: list[str] = Field(description="the alternatives of this reply (regenerated, or the greetings)")
    swipe_id: int = Field(description="which swipe `content` is")
    created_at: datetime


class ConversationOut(BaseModel):
    id: str
    model: str
    character_id: str | None
    character_name: str | None
    user_name: str
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut] | None = Field(default=None, description="oldest first; in listings left out")
    preview: str | None = Field(
        default=None, description="in listings: the start of the last message, to tell conversations apart"
    )
