"""The few writes and reads a chat makes, kept apart from the document definitions."""

from bson import ObjectId
from mongoengine import NotUniqueError

from mongo.documents import Character, Conversation, Message, utcnow

UPSERT_ATTEMPTS = 3


def upsert_character(
    name: str, description: str, first_mes: str, avatar_url: str, access_level: bool
) -> None:
    """Two first chats with one new name race to insert it: the loser's upsert fails on the unique
    name, and its retry finds the winner's document and updates it."""
    for attempt in range(UPSERT_ATTEMPTS):
        try:
            Character.objects(name=name).update_one(
                upsert=True,
                set__description=description,
                set__first_mes=first_mes,
                set__avatar_url=avatar_url,
                set__access_level=access_level,
                set__updated_at=utcnow(),
                set_on_insert__created_at=utcnow(),
            )
            return
        except NotUniqueError:
            if attempt == UPSERT_ATTEMPTS - 1:
                raise


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
    while the reply was generated, or never written because its turn failed to store). Written once
    per job: a second write of the job's reply (from the outbox, or after a partial one the API kept
    when the worker was lost) replaces the first."""
    if not Conversation.objects(id=conversation_id).update_one(set__updated_at=utcnow()):
        return None
    existing = Message.objects(job_id=job_id, role="assistant").only("id").first()
    if existing is not None:
        existing.update(set__content=content, set__status=status, set__finish_reason=finish_reason,
                        set__usage=usage)  # fmt: skip
        return str(existing.id)
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
