"""Conversations and their messages: a user's conversations (someone else's is as good as absent),
the turns a chat writes, and where a worker stores a chat job's reply: a new message, another swipe
of a message, or the rest of one (`save_job_reply`, where the chat task stores its reply, see
workers/chat_job.py)."""

from bson import ObjectId
from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    ObjectIdField,
    QuerySet,
    StringField,
)

from mongo.fields import utcnow
from schemas.jobs import ChatJob, ReplyTarget


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
    # How each swipe ended ({"status", "finish_reason"}), so choosing one brings its own status back
    # (a stopped alternative stays stopped); missing entries (older messages, greetings): see _ends.
    swipe_ends = ListField(DictField())


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


def _owned_by(owner: str | None) -> QuerySet:
    """A user's conversations; everyone's for an admin (None)."""
    return Conversation.objects if owner is None else Conversation.objects(user_id=owner)


def user_conversation(owner: str | None, conversation_id: str) -> Conversation | None:
    if not ObjectId.is_valid(conversation_id):
        return None
    return _owned_by(owner).filter(id=ObjectId(conversation_id)).first()


def list_conversations(
    owner: str | None, character_id: str | None, page: int, page_size: int
) -> tuple[list[Conversation], int]:
    query = _owned_by(owner)
    if character_id:
        query = query.filter(character_id=ObjectId(character_id))
    total = query.count()
    found = query.order_by("-updated_at", "-id").skip((page - 1) * page_size).limit(page_size)
    return list(found), total


def delete_conversation(conversation: Conversation) -> None:
    Message.objects(conversation_id=conversation.id).delete()
    conversation.delete()


def conversation_messages(conversation_id: str) -> list[Message]:
    return list(Message.objects(conversation_id=ObjectId(conversation_id)).order_by("created_at", "id"))


def last_message(conversation_id: ObjectId) -> Message | None:
    return Message.objects(conversation_id=conversation_id).order_by("-created_at", "-id").first()


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


def _swipes_with(message: Message, text: str, continuing: bool) -> tuple[list[str], int]:
    """The message's swipes with the new text in, and the index of the one now shown."""
    swipes = list(message.swipes) or [message.content]
    if continuing:
        index = min(message.swipe_id, len(swipes) - 1)
        swipes[index] = message.content + text
        return swipes, index
    return [*swipes, text], len(swipes)


def _ends(message: Message, count: int) -> list[dict]:
    """How each of the message's `count` swipes ended: the stored record, else the message's own
    status for the current one, else complete."""
    current = {"status": message.status, "finish_reason": message.finish_reason}
    stored = list(message.swipe_ends)
    return [
        stored[i]
        if i < len(stored)
        else current
        if i == message.swipe_id
        else {"status": "complete", "finish_reason": None}
        for i in range(count)
    ]


def choose_swipe(message: Message, swipe_id: int) -> Message:
    """Make swipe `swipe_id` the message's content: the one shown, continued, and in later prompts,
    with the status it ended with."""
    swipes = list(message.swipes) or [message.content]
    ends = _ends(message, len(swipes))
    Message.objects(id=message.id).update_one(
        set__content=swipes[swipe_id],
        set__swipe_id=swipe_id,
        set__swipe_ends=ends,
        set__status=ends[swipe_id]["status"],
        set__finish_reason=ends[swipe_id]["finish_reason"],
    )
    message.reload()
    return message


def _store_into(
    target: ReplyTarget, job_id: str, content: str, status: str, finish_reason: str, usage: dict
) -> str | None:
    """None, and nothing stored, when the message went with its deleted conversation."""
    message = Message.objects(id=ObjectId(target.message_id)).first()
    if message is None:
        return None
    if message.job_id == job_id:  # this job's reply is already in (a write again from the outbox)
        return target.message_id
    swipes, index = _swipes_with(message, content, target.mode == "continue")
    ends = _ends(message, len(swipes))
    ends[index] = {"status": status, "finish_reason": finish_reason}
    Message.objects(id=message.id).update_one(
        set__content=swipes[index],
        set__swipes=swipes,
        set__swipe_id=index,
        set__swipe_ends=ends,
        set__job_id=job_id,
        set__status=status,
        set__finish_reason=finish_reason,
        set__usage=usage,
    )
    Conversation.objects(id=message.conversation_id).update_one(set__updated_at=utcnow())
    return target.message_id


def save_job_reply(job: ChatJob, content: str, status: str, finish_reason: str, usage: dict) -> str | None:
    """A regenerated reply becomes the message's newest swipe (the others are kept); a continued one
    is appended to the message; any other reply is a new message. None for a job without a
    conversation (the stateless /v1 API)."""
    if job.conversation_id is None:
        return None
    if job.reply_to is not None:
        return _store_into(job.reply_to, job.job_id, content, status, finish_reason, usage)
    return save_reply(job.conversation_id, job.job_id, content, status, finish_reason, usage)
