"""Characters in MongoDB: create, find, list, update, delete, and their mapping to card data."""

import re
from typing import Any

from bson import ObjectId
from mongoengine import NotUniqueError

from mongo.documents import Character, Conversation, utcnow
from schemas.cards import CardData

CARD_FIELDS = tuple(CardData.model_fields)


class CharacterNameTaken(ValueError):
    """Character names are unique (the original chat route finds its character by name)."""


def card_data(character: Character) -> CardData:
    """The character as a card's `data`, with the unknown keys it was imported with."""
    values = {name: getattr(character, name) for name in CARD_FIELDS}
    if values["character_book"] is None:
        del values["character_book"]
    return CardData.model_validate({**(character.data_extras or {}), **values})


def _apply(character: Character, data: CardData) -> None:
    body = data.card_dict()
    for name in CARD_FIELDS:
        setattr(character, name, body.get(name))
    character.updated_at = utcnow()


def _save(character: Character) -> Character:
    try:
        return character.save()
    except NotUniqueError:
        raise CharacterNameTaken(f"a character named {character.name!r} already exists") from None


def create_character(
    data: CardData, card_extras: dict[str, Any] | None = None, avatar: bytes | None = None
) -> Character:
    body = data.card_dict()
    character = Character(
        data_extras={key: body[key] for key in data.model_extra or {}},
        card_extras=card_extras or {},
        avatar=avatar,
    )
    _apply(character, data)
    return _save(character)


def find_character(character_id: str) -> Character | None:
    return Character.objects(id=ObjectId(character_id)).first() if ObjectId.is_valid(character_id) else None


def conversation_character(conversation: Conversation) -> Character | None:
    """The character a conversation is with: by id, or by name for one the original route opened."""
    if conversation.character_id is not None:
        return Character.objects(id=conversation.character_id).first()
    return Character.objects(name=conversation.character_name).first()


def update_character(character: Character, data: CardData) -> Character:
    """Replace the card fields; the avatar and the unknown keys of an imported card stay."""
    _apply(character, data)
    return _save(character)


def set_avatar(character: Character, png: bytes) -> Character:
    character.avatar = png
    character.updated_at = utcnow()
    return character.save()


def list_characters(
    name: str | None, tag: str | None, page: int, page_size: int
) -> tuple[list[Character], int, set[ObjectId]]:
    """A page of characters by name, without their avatars; also which of them have one."""
    query = Character.objects
    if name:
        # A BSON regex with only the `i` flag: a compiled Python pattern would carry `u`, which
        # FerretDB refuses.
        query = query.filter(__raw__={"name": {"$regex": re.escape(name), "$options": "i"}})
    if tag:
        query = query.filter(tags=tag)
    total = query.count()
    found = list(query.exclude("avatar").order_by("name", "id").skip((page - 1) * page_size).limit(page_size))
    ids = [character.id for character in found]
    with_avatar = set(Character.objects(id__in=ids, avatar__exists=True).scalar("id")) if ids else set()
    return found, total, with_avatar


def delete_character(character: Character) -> None:
    character.delete()
