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
    Q,
    QuerySet,
    StringField,
)

from mongo.conversations import Conversation
from mongo.fields import JsonField, utcnow
from schemas.cards import CardData

VISIBILITIES = ("private", "public")


class Character(Document):
    """A character; field names follow Character Card V2 so cards map onto it one to one."""

    meta = {
        "collection": "characters",
        "indexes": [{"fields": ["owner", "name"], "unique": True, "name": "owner_name"}, "visibility"],
    }

    # The user (id) who made it: only they or an admin change or delete it. "" for characters from
    # before accounts, which only an admin changes. A private one only its owner (and admins) see.
    owner = StringField(default="")
    visibility = StringField(choices=VISIBILITIES, default="private")
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
UPSERT_ATTEMPTS = 3


class CharacterNameTaken(ValueError):
    """A user's characters have unique names (the original chat route finds its character by name)."""


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
        raise CharacterNameTaken(f"you already have a character named {character.name!r}") from None


def visible_to(owner: str | None) -> QuerySet:
    """The characters a user sees: their own and the public ones; everything for an admin (None)."""
    if owner is None:
        return Character.objects
    return Character.objects(Q(owner=owner) | Q(visibility="public"))


def create_character(
    owner: str,
    data: CardData,
    visibility: str = "private",
    card_extras: dict[str, Any] | None = None,
    avatar: bytes | None = None,
) -> Character:
    body = data.card_dict()
    character = Character(
        owner=owner,
        visibility=visibility,
        data_extras={key: body[key] for key in data.model_extra or {}},
        card_extras=card_extras or {},
        avatar=avatar,
    )
    _apply(character, data)
    return _save(character)


def upsert_character(
    owner: str, name: str, description: str, first_mes: str, avatar_url: str, access_level: bool
) -> ObjectId | None:
    """The original chat route's character: the caller's own of that name, created or updated; never
    another user's. Its id, which the conversation keeps (None if it was deleted at once). Two first
    chats with one new name race to insert it: the loser's upsert fails on the unique (owner, name),
    and its retry finds the winner's document and updates it."""
    for attempt in range(UPSERT_ATTEMPTS):
        try:
            Character.objects(owner=owner, name=name).update_one(
                upsert=True,
                set__description=description,
                set__first_mes=first_mes,
                set__avatar_url=avatar_url,
                set__access_level=access_level,
                set__updated_at=utcnow(),
                set_on_insert__created_at=utcnow(),
            )
            return Character.objects(owner=owner, name=name).scalar("id").first()
        except NotUniqueError:
            if attempt == UPSERT_ATTEMPTS - 1:
                raise


def find_character(character_id: str, owner: str | None) -> Character | None:
    """A character the user (None: an admin) may see, by id."""
    if not ObjectId.is_valid(character_id):
        return None
    return visible_to(owner).filter(id=ObjectId(character_id)).first()


def characters_named(names: set[str], owner: str) -> dict[str, Character]:
    """By name, for this user: their own character of a name, else a public one."""
    found: dict[str, Character] = {}
    for character in visible_to(owner).filter(name__in=sorted(names)).order_by("id"):
        if character.name not in found or character.owner == owner:
            found[character.name] = character
    return found


def find_character_by_name(name: str, owner: str) -> Character | None:
    return characters_named({name}, owner).get(name)


def conversation_character(conversation: Conversation) -> Character | None:
    """The character a conversation was opened with, by its id; None once deleted. Never by name:
    another user's card of the same name must not take the place of a deleted one."""
    if conversation.character_id is None:
        return None
    return Character.objects(id=conversation.character_id).first()


def link_conversations_to_characters() -> None:
    """Conversations the original route opened before they kept their character's id name it only:
    they get the id of their user's own character of that name (else an ownerless one, from before
    accounts). One left unlinked has lost its character (see `conversation_character`)."""
    for conversation in Conversation.objects(character_id=None, character_name__ne=None):
        mine = Character.objects(owner__in=[conversation.user_id, ""], name=conversation.character_name)
        found = sorted(
            mine.only("id", "owner"), key=lambda character: character.owner != conversation.user_id
        )
        if found:
            conversation.update(set__character_id=found[0].id)


def update_character(character: Character, data: CardData, visibility: str) -> Character:
    """Replace the card fields; the avatar and the unknown keys of an imported card stay."""
    _apply(character, data)
    character.visibility = visibility
    return _save(character)


def set_avatar(character: Character, png: bytes) -> Character:
    character.avatar = png
    character.updated_at = utcnow()
    return character.save()


def list_characters(
    owner: str | None, name: str | None, tag: str | None, page: int, page_size: int
) -> tuple[list[Character], int, set[ObjectId]]:
    """A page of the characters a user sees, by name, without their avatars; also which have one."""
    query = visible_to(owner)
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


def characters_brief(owner: str) -> list[Character]:
    """The characters a user can chat with by name (each name once), with only name and time loaded."""
    found = characters_named(set(visible_to(owner).scalar("name")), owner)
    return sorted(found.values(), key=lambda character: character.name)


def delete_character(character: Character) -> None:
    character.delete()


def adopt_ownerless_characters() -> None:
    """Characters stored before accounts belong to nobody and stay public (only admins change them);
    the unique name index of those days gives way to one per owner."""
    Character.objects(owner__exists=False).update(set__owner="", set__visibility="public")
    indexes = Character._get_collection().index_information()
    if "name_1" in indexes:
        Character._get_collection().drop_index("name_1")
