"""The stored documents: characters, conversations and their messages."""

from datetime import UTC, datetime

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    ObjectIdField,
    StringField,
)

from mongo.json_field import JsonField


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class Conversation(Document):
    meta = {"collection": "conversations", "indexes": [("user_id", "-updated_at")]}

    user_id = StringField(required=True)
    model = StringField(required=True)
    character_name = StringField()
    character_id = ObjectIdField()
    user_name = StringField(default="User")  # what {{user}} stands for in the character's texts
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


MESSAGE_STATUSES = ("complete", "partial", "cancelled", "error")


class Message(Document):
    """One turn. A reply cut short keeps its text with status `partial`, `cancelled` or `error`."""

    meta = {"collection": "messages", "indexes": [("conversation_id", "created_at"), "job_id"]}

    conversation_id = ObjectIdField(required=True)
    role = StringField(required=True, choices=("system", "user", "assistant"))
    content = StringField(default="")
    status = StringField(default="complete", choices=MESSAGE_STATUSES)
    job_id = StringField()
    finish_reason = StringField()
    usage = DictField()
    created_at = DateTimeField(default=utcnow)
    # Alternative replies (regenerated ones, or a character's greetings); `content` is swipes[swipe_id].
    swipes = ListField(StringField())
    swipe_id = IntField(default=0)
