"""Users and API keys as the admin routes and the CLI show them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

USER_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"


class UserCreate(BaseModel):
    name: str = Field(pattern=USER_NAME, description="letters, digits and _.@-, at most 64")
    role: Literal["user", "admin"] = "user"


class UserOut(BaseModel):
    name: str
    role: str
    created_at: datetime


class KeyCreate(BaseModel):
    label: str = Field(default="", max_length=100, description="what the key is for")


class KeyOut(BaseModel):
    prefix: str = Field(description="names the key in logs and listings")
    user: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself: shown here once, stored only as a hash")


class Me(BaseModel):
    user_id: str = Field(description="what the caller's conversations and jobs are stored under")
    name: str
    role: str
    key_prefix: str
