"""The few writes and reads a chat makes, kept apart from the document definitions."""

from bson import ObjectId

from mongo.documents import Character, Conversation, Message, utcnow
from schemas.jobs import ChatJob


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


def start_conversation(user_id: str, model: str, character_name: str | None, greeting: str) -> Conversation:
    """A new conversation; a character's greeting becomes its first assistant message."""
    conversation = Conversation(user_id=user_id, model=model, character_name=character_name).save()
    if greeting:
        Message(conversation_id=conversation.id, role="assistant", content=greeting).save()
    return conversation


def add_user_message(conversation_id: ObjectId, content: str, job_id: str) -> Message:
    return Message(conversation_id=conversation_id, role="user", content=content, job_id=job_id).save()


def save_reply(
    conversation_id: str, job_id: str, content: str, status: str, finish_reason: str, usage: dict
) -> str:
    message = Message(
        conversation_id=ObjectId(conversation_id),
        role="assistant",
        content=content,
        status=status,
        job_id=job_id,
        finish_reason=finish_reason,
        usage=usage,
    ).save()
    Conversation.objects(id=conversation_id).update_one(set__updated_at=utcnow())
    return str(message.id)


def save_job_reply(job: ChatJob, content: str, status: str, finish_reason: str, usage: dict) -> str | None:
    """The StoreReply of a chat job (see workers/chat_job.py): into its conversation, if it has one."""
    if job.conversation_id is None:
        return None
    return save_reply(job.conversation_id, job.job_id, content, status, finish_reason, usage)


def conversation_messages(conversation_id: str) -> list[Message]:
    return list(Message.objects(conversation_id=ObjectId(conversation_id)).order_by("created_at", "id"))
