"""Where a worker stores a reply: a new message, another swipe of a message, or the rest of one."""

from collections.abc import Callable

from bson import ObjectId

from mongo.documents import Conversation, Message, utcnow
from mongo.store import save_reply
from schemas.jobs import ChatJob, ReplyTarget

# (conversation_id, job_id, content, status, finish_reason, usage) -> stored message id
StoreReply = Callable[[str, str, str, str, str, dict], str]


def _swipes_with(message: Message, text: str, continuing: bool) -> tuple[list[str], int]:
    """The message's swipes with the new text in, and the index of the one now shown."""
    swipes = list(message.swipes) or [message.content]
    if continuing:
        index = min(message.swipe_id, len(swipes) - 1)
        swipes[index] = message.content + text
        return swipes, index
    return [*swipes, text], len(swipes)


def _store_into(target: ReplyTarget) -> StoreReply:
    def store(_: str, job_id: str, content: str, status: str, finish_reason: str, usage: dict) -> str:
        message = Message.objects.get(id=ObjectId(target.message_id))
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

    return store


def reply_store(job: ChatJob) -> StoreReply:
    """A regenerated reply becomes the message's newest swipe (the others are kept); a continued
    one is appended to the message; any other reply is a new message."""
    return save_reply if job.reply_to is None else _store_into(job.reply_to)
