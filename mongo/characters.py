"""Characters: the document (Character Card V2 fields), its mapping to card data, and its queries."""

import re
from typing import Any

from bson import ObjectId
from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    Document,
    ListField,
    NotUniqueError,
    StringField,
)

from mongo.conversations import Conversation
from mongo.fields import JsonField, utcnow
from schemas.cards import CardData


class Character(Document):
    """A character; field names follow Character Card V2 so cards map onto it one to one."""

    meta = {"collection": "characters", "indexes": [{"fields": ["name"], "unique": True}]}

    name = StringField(required=True, max_length=100)
    description = StringField(default="")
    first_mes = StringField(default="")
    avatar_url = StringField(default="")
    access_level = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    personality = StringField(default="")
    scenario = StringField(default="")
    mes_example = StringField(default="")
    creator_notes = StringField(default="")
    system_prompt = StringField(default="")
    post_history_instructions = StringField(default="")
    alternate_greetings = ListField(StringField())
    character_book = JsonField()
    tags = ListField(StringField())
    creator = StringField(default="")
    character_version = StringField(default="")
    extensions = JsonField(default=dict)
    # Unknown keys of the card's `data` and beside it, kept so an export gives them back.
    data_extras = JsonField(default=dict)
    card_extras = JsonField(default=dict)
    avatar = BinaryField()  # PNG bytes, card chunks removed


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


def upsert_character(
    name: str, description: str, first_mes: str, avatar_url: str, access_level: bool
) -> None:
    """The original chat route's character, created or updated by name."""
    Character.objects(name=name).update_one(
        upsert=True,
        set__description=description,
        set__first_mes=first_mes,
        set__avatar_url=avatar_url,
        set__access_level=access_level,
        set__updated_at=utcnow(),
        set_on_insert__created_at=utcnow(),
    )


def find_character(character_id: str) -> Character | None:
    return Character.objects(id=ObjectId(character_id)).first() if ObjectId.is_valid(character_id) else None


def find_character_by_name(name: str) -> Character | None:
    return Character.objects(name=name).first()


def characters_named(names: set[str]) -> dict[str, Character]:
    return {character.name: character for character in Character.objects(name__in=sorted(names))}


def conversation_character(conversation: Conversation) -> Character | None:
    """The character a conversation is with: by id, or by name for one the original route opened."""
    if conversation.character_id is not None:
        return Character.objects(id=conversation.character_id).first()
    return find_character_by_name(conversation.character_name)


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


def characters_brief() -> list[Character]:
    """Every character by name, with only its name and creation time loaded."""
    return list(Character.objects.only("name", "created_at").order_by("name"))


def delete_character(character: Character) -> None:
    character.delete()
