"""The character routes' bodies: a character is its card data, plus what the service keeps about it."""

from datetime import datetime

from pydantic import ConfigDict

from schemas.cards import CardData


class CharacterIn(CardData):
    """Every Character Card V2 field; unlike an imported card, unknown keys are refused (a typo)."""

    model_config = ConfigDict(extra="forbid")


class CharacterOut(CharacterIn):
    id: str
    has_avatar: bool
    avatar_url: str
    created_at: datetime
    updated_at: datetime
