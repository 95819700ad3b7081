"""A user's conversations with characters: open, list, read, delete; chat on, regenerate, continue,
choose the current alternative (swipe) of the last reply.

A conversation belongs to the user whose API key opened it; anyone else gets 404 (an admin sees all). The three chat routes
stream like `/Lumimaid_stream` (SSE or text/plain), with the stored history as the prompt.
"""

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.http.auth import Caller, caller_dep
from api.http.dependencies import ChatCall, chat_call
from api.streams.chat_stream import STREAM_RESPONSES, stream_turn
from api.turns import conversation_turns as turns
from api.turns.conversation_turns import Turn
from mongo.conversations import (
    Conversation,
    Message,
    conversation_messages,
    delete_conversation,
    last_message,
    list_conversations,
)
from schemas.chat import GenerationParams
from schemas.common import ObjectIdStr, Page, PageNumber, PageSize
from schemas.conversations import ConversationCreate, ConversationOut, MessageOut, SwipeChoice, TurnRequest
from settings import Settings

router = APIRouter(prefix="/conversations", tags=["conversations"])

PREVIEW_CHARS = 80


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=str(message.id),
        role=message.role,
        content=message.content,
        status=message.status,
        finish_reason=message.finish_reason,
        swipes=list(message.swipes) or [message.content],
        swipe_id=message.swipe_id,
        created_at=message.created_at,
    )


def conversation_out(conversation: Conversation, messages: list[Message] | None = None) -> ConversationOut:
    return ConversationOut(
        id=str(conversation.id),
        model=conversation.model,
        character_id=str(conversation.character_id) if conversation.character_id else None,
        character_name=conversation.character_name,
        user_name=conversation.user_name,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=None if messages is None else [message_out(message) for message in messages],
    )


def _with_preview(conversation: Conversation) -> ConversationOut:
    last = last_message(conversation.id)
    text = " ".join(last.content.split()) if last is not None else ""
    preview = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return conversation_out(conversation).model_copy(update={"preview": preview})


def _opened(caller: Caller, body: ConversationCreate) -> ConversationOut:
    character = turns.existing_character(body.character_id, caller.owner_filter)
    conversation = turns.open_conversation(caller.user_id, character, body.greeting_index, body.user_name)
    return conversation_out(conversation, conversation_messages(str(conversation.id)))


def _read(owner: str | None, conversation_id: str) -> ConversationOut:
    conversation = turns.owned_conversation(owner, conversation_id)
    return conversation_out(conversation, conversation_messages(conversation_id))


@router.post("", status_code=201, summary="Open a conversation with a stored character, at its greeting")
async def open_(body: ConversationCreate, caller: Caller = Depends(caller_dep)) -> ConversationOut:
    return await asyncio.to_thread(_opened, caller, body)


@router.get("", summary="The caller's conversations, most recent first")
async def list_(
    character_id: ObjectIdStr | None = Query(default=None),
    page: PageNumber = 1,
    page_size: PageSize = 20,
    caller: Caller = Depends(caller_dep),
) -> Page[ConversationOut]:
    def listed() -> tuple[list[ConversationOut], int]:
        found, total = list_conversations(caller.owner_filter, character_id, page, page_size)
        return [_with_preview(conversation) for conversation in found], total

    items, total = await asyncio.to_thread(listed)
    return Page[ConversationOut](items=items, total=total, page=page, page_size=page_size)


@router.get("/{conversation_id}", summary="A conversation with its messages")
async def read(conversation_id: ObjectIdStr, caller: Caller = Depends(caller_dep)) -> ConversationOut:
    return await asyncio.to_thread(_read, caller.owner_filter, conversation_id)


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation and its messages")
async def delete(conversation_id: ObjectIdStr, caller: Caller = Depends(caller_dep)) -> Response:
    conversation = await asyncio.to_thread(turns.owned_conversation, caller.owner_filter, conversation_id)
    await asyncio.to_thread(delete_conversation, conversation)
    return Response(status_code=204)


@router.post(
    "/{conversation_id}/messages", summary="Say something; stream the reply", responses=STREAM_RESPONSES
)
async def say(
    conversation_id: ObjectIdStr, body: TurnRequest, call: ChatCall = Depends(chat_call)
) -> Response:
    turn = await asyncio.to_thread(
        turns.next_turn, call.caller.owner_filter, conversation_id, body.input_data, call.settings
    )
    return await stream_turn(call, turn, body)


@router.put(
    "/{conversation_id}/swipe",
    summary="Choose which alternative of the last reply is current: shown, continued, and in the next prompt",
    responses={409: {"description": "the conversation does not end with a reply"}},
)
async def choose_swipe(
    conversation_id: ObjectIdStr, body: SwipeChoice, caller: Caller = Depends(caller_dep)
) -> MessageOut:
    reply = await asyncio.to_thread(turns.chosen_swipe, caller.owner_filter, conversation_id, body.swipe_id)
    return message_out(reply)


def _reply_route(action: str, prepare: Callable[[str | None, str, Settings], Turn], summary: str) -> None:
    """A route that streams into the last reply: `regenerate` and `continue` differ only in `prepare`."""

    async def stream(
        conversation_id: ObjectIdStr,
        body: GenerationParams | None = None,
        call: ChatCall = Depends(chat_call),
    ) -> Response:
        turn = await asyncio.to_thread(prepare, call.caller.owner_filter, conversation_id, call.settings)
        return await stream_turn(call, turn, body or GenerationParams())

    responses = STREAM_RESPONSES | {
        409: {"description": "the conversation does not end with a generated reply"}
    }
    router.post(f"/{{conversation_id}}/{action}", summary=summary, responses=responses, name=action)(stream)


_reply_route(
    "regenerate",
    turns.regenerate_turn,
    "Stream another reply in place of the last one (the earlier ones stay as swipes)",
)
_reply_route(
    "continue", turns.continue_turn, "Stream more of the last reply (e.g. one cut short by max_tokens)"
)
