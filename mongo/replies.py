"""Where a worker stores a chat job's reply: a new message, another swipe of a message, or the rest
of one. `save_job_reply` is the chat task's StoreReply (see workers/reply_outbox.py)."""

from bson import ObjectId

from mongo.documents import Conversation, Message, utcnow
from mongo.store import save_reply
from schemas.jobs import ChatJob, ReplyTarget


def _swipes_with(message: Message, text: str, continuing: bool) -> tuple[list[str], int]:
    """The message's swipes with the new text in, and the index of the one now shown."""
    swipes = list(message.swipes) or [message.content]
    if continuing:
        index = min(message.swipe_id, len(swipes) - 1)
        swipes[index] = message.content + text
        return swipes, index
    return [*swipes, text], len(swipes)


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
    Message.objects(id=message.id).update_one(
        set__content=swipes[index],
        set__swipes=swipes,
        set__swipe_id=index,
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
