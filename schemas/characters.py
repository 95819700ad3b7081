"""The character routes' bodies: a character is its card data, plus what the service keeps about it."""

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from schemas.cards import CardData


class CharacterIn(CardData):
    """Every Character Card V2 field; unlike an imported card, unknown keys are refused (a typo)."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["private", "public"] = Field(
        default="private", description="private: only its owner (and admins) see it; public: every user"
    )


class CharacterOut(CharacterIn):
    id: str
    mine: bool = Field(description="whether the caller owns it (and so may change or delete it)")
    has_avatar: bool
    avatar_url: str
    created_at: datetime
    updated_at: datetime
