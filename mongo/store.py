"""The few writes and reads a chat makes, kept apart from the document definitions."""

from bson import ObjectId

from mongo.documents import Character, Conversation, Message, utcnow


def upsert_character(
    name: str, description: str, first_mes: str, avatar_url: str, access_level: bool
) -> None:
    Character.objects(name=name).update_one(
        upsert=True,
        set__description=description,
        set__first_mes=first_mes,
        set__avatar_url=avatar_url,
        set__access_level=access_level,
        set__updated_at=utcnow(),
        set_on_insert__created_at=utcnow(),
    )


def characters_named(names: set[str]) -> dict[str, Character]:
    return {character.name: character for character in Character.objects(name__in=sorted(names))}


def start_conversation(
    user_id: str,
    model: str,
    character_name: str | None,
    greeting: str,
    *,
    character_id: ObjectId | None = None,
    user_name: str = "User",
    greetings: list[str] | None = None,
    conversation_id: ObjectId | None = None,
) -> Conversation:
    """A new conversation; a character's greeting becomes its first assistant message, with all of
    the character's `greetings` kept as its swipes. `conversation_id` lets the caller name it first
    (a chat job can then be queued while it is written)."""
    conversation = Conversation(
        id=conversation_id,
        user_id=user_id,
        model=model,
        character_name=character_name,
        character_id=character_id,
        user_name=user_name,
    ).save()
    if greeting:
        swipes = greetings or [greeting]
        Message(
            conversation_id=conversation.id,
            role="assistant",
            content=greeting,
            swipes=swipes,
            swipe_id=swipes.index(greeting) if greeting in swipes else 0,
        ).save()
    return conversation


def add_user_message(conversation_id: ObjectId, content: str, job_id: str) -> Message:
    return Message(conversation_id=conversation_id, role="user", content=content, job_id=job_id).save()


def save_reply(
    conversation_id: str, job_id: str, content: str, status: str, finish_reason: str, usage: dict
) -> str | None:
    """The reply as a new message; None, and nothing stored, when the conversation is gone (deleted
    while the reply was generated, or never written because its turn failed to store)."""
    if not Conversation.objects(id=conversation_id).update_one(set__updated_at=utcnow()):
        return None
    message = Message(
        conversation_id=ObjectId(conversation_id),
        role="assistant",
        content=content,
        status=status,
        job_id=job_id,
        finish_reason=finish_reason,
        usage=usage,
    ).save()
    return str(message.id)


def conversation_messages(conversation_id: str) -> list[Message]:
    return list(Message.objects(conversation_id=ObjectId(conversation_id)).order_by("created_at", "id"))
