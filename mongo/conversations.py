"""A user's conversations: find, list, delete. Someone else's conversation is as good as absent."""

from bson import ObjectId

from mongo.documents import Conversation, Message


def user_conversation(user_id: str, conversation_id: str) -> Conversation | None:
    if not ObjectId.is_valid(conversation_id):
        return None
    return Conversation.objects(id=ObjectId(conversation_id), user_id=user_id).first()


def list_conversations(
    user_id: str, character_id: str | None, page: int, page_size: int
) -> tuple[list[Conversation], int]:
    query = Conversation.objects(user_id=user_id)
    if character_id:
        query = query.filter(character_id=ObjectId(character_id))
    total = query.count()
    found = query.order_by("-updated_at", "-id").skip((page - 1) * page_size).limit(page_size)
    return list(found), total


def delete_conversation(conversation: Conversation) -> None:
    Message.objects(conversation_id=conversation.id).delete()
    conversation.delete()
