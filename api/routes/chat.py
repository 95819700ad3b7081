"""The original's streaming chat routes: a character (`/Lumimaid_stream`) and the assistant (`/Llama_stream`)."""

import asyncio

from bson import ObjectId
from fastapi import APIRouter, Depends
from starlette.responses import Response

from api.http.dependencies import ChatCall, chat_call
from api.streams.chat_stream import STREAM_RESPONSES, stream_chat, stream_turn
from api.streams.job_start import serving_spec
from api.turns.chat_messages import assistant_messages, character_messages
from api.turns.conversation_turns import lumimaid_turn, next_turn
from api.turns.grounding import retrieve
from mongo.characters import upsert_character
from mongo.conversations import add_user_message, start_conversation
from schemas.chat import LlamaRequest, LumimaidRequest

router = APIRouter(tags=["chat"])


@router.post("/Lumimaid_stream", summary="Stream a character's reply", responses=STREAM_RESPONSES)
async def lumimaid_stream(body: LumimaidRequest, call: ChatCall = Depends(chat_call)) -> Response:
    if body.conversation_id or body.character_id:
        return await stream_turn(
            call, await asyncio.to_thread(lumimaid_turn, call.caller, body, call.settings), body
        )
    spec = await serving_spec(call.client, call.settings, "lumimaid")
    conversation_id = ObjectId()

    def store_turn(job_id: str) -> None:
        character_id = upsert_character(
            call.user_id, body.character_name, body.context, body.greeting, body.image, body.access_level
        )
        start_conversation(
            call.user_id,
            spec.name,
            body.character_name,
            body.greeting,
            character_id=character_id,
            conversation_id=conversation_id,
        )
        add_user_message(conversation_id, body.input_data, job_id)

    prompt = character_messages(body)
    return await stream_chat(
        call, spec, prompt.messages, body, str(conversation_id), store_turn, context_fit=prompt.context_fit
    )


@router.post("/Llama_stream", summary="Stream an assistant's answer", responses=STREAM_RESPONSES)
async def llama_stream(body: LlamaRequest, call: ChatCall = Depends(chat_call)) -> Response:
    system_prompt, sources = call.settings.assistant_system_prompt, []
    if body.google_access:
        grounding, sources = await retrieve(body.input_data, call.settings.grounding_passages)
        system_prompt = f"{system_prompt}\n\n{grounding}" if grounding else system_prompt
    if body.conversation_id:
        turn = await asyncio.to_thread(
            next_turn,
            call.caller.owner_filter,
            body.conversation_id,
            body.input_data,
            call.settings,
            "llama",
            system_prompt,
        )
        return await stream_turn(call, turn, body, sources=sources)
    spec = await serving_spec(call.client, call.settings, "llama")
    conversation_id = ObjectId()

    def store_turn(job_id: str) -> None:
        start_conversation(call.user_id, spec.name, None, "", conversation_id=conversation_id)
        add_user_message(conversation_id, body.input_data, job_id)

    messages = assistant_messages(body, system_prompt)
    return await stream_chat(call, spec, messages, body, str(conversation_id), store_turn, sources=sources)
