"""The original's streaming chat routes: a character (`/Lumimaid_stream`) and the assistant (`/Llama_stream`)."""

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from bson import ObjectId
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api.chat_messages import assistant_messages, character_messages, sampling_params
from api.conversation_turns import Turn, lumimaid_turn, next_turn
from api.dependencies import ChatCall, chat_call
from api.grounding import retrieve
from api.job_start import serving_spec, start_job
from api.relay import plain_text_response, sse_response
from model_registry import ModelSpec
from mongo.store import add_user_message, start_conversation, upsert_character
from schemas.chat import GenerationParams, LlamaRequest, LumimaidRequest
from schemas.jobs import ChatJob, ChatMessage

router = APIRouter(tags=["chat"])

STREAM_RESPONSES = {
    200: {
        "description": "the reply as Server-Sent Events (token, done, error), or text/plain chunks",
        "content": {"text/event-stream": {}, "text/plain": {}},
    },
    422: {"description": "a field failed validation; nothing was stored or enqueued"},
    429: {"description": "the model's queue is full (see Retry-After); nothing was stored"},
    503: {"description": "no worker serves the model's queue, or Redis/MongoDB is down"},
}


def _wants_plain_text(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/plain" in accept and "text/event-stream" not in accept


async def _stream_chat(
    call: ChatCall,
    spec: ModelSpec,
    messages: list[ChatMessage],
    params: GenerationParams,
    conversation_id: str,
    store_turn: Callable[[str], None],
    **job_fields: Any,
) -> Response:
    """Register for the job's events, enqueue it while the user's turn is written, then relay."""
    job_id = uuid.uuid4().hex
    job = ChatJob(
        job_id=job_id,
        model=spec.name,
        messages=messages,
        sampling=sampling_params(params, call.settings),
        conversation_id=conversation_id,
        detach=params.detach,
        **job_fields,
    )
    stream = await start_job(call, spec, job, params.detach, asyncio.to_thread(store_turn, job_id))
    headers = {"X-Job-Id": job_id, "X-Conversation-Id": conversation_id}
    if _wants_plain_text(call.request):
        return plain_text_response(stream, headers)
    return sse_response(stream, headers)


async def stream_turn(call: ChatCall, turn: Turn, params: GenerationParams, **job_fields: Any) -> Response:
    """Stream a turn of a stored conversation (its history, trimmed by the worker to fit)."""
    spec = await serving_spec(call.client, call.settings, turn.model)
    return await _stream_chat(
        call,
        spec,
        turn.prompt.messages,
        params,
        turn.conversation_id,
        turn.store_turn,
        context_fit=turn.prompt.context_fit,
        reply_to=turn.reply_to,
        **job_fields,
    )


@router.post("/Lumimaid_stream", summary="Stream a character's reply", responses=STREAM_RESPONSES)
async def lumimaid_stream(body: LumimaidRequest, call: ChatCall = Depends(chat_call)) -> Response:
    if body.conversation_id or body.character_id:
        return await stream_turn(
            call, await asyncio.to_thread(lumimaid_turn, call.user_id, body, call.settings), body
        )
    spec = await serving_spec(call.client, call.settings, "lumimaid")
    conversation_id = ObjectId()

    def store_turn(job_id: str) -> None:
        upsert_character(body.character_name, body.context, body.greeting, body.image, body.access_level)
        start_conversation(
            call.user_id, spec.name, body.character_name, body.greeting, conversation_id=conversation_id
        )
        add_user_message(conversation_id, body.input_data, job_id)

    prompt = character_messages(body)
    return await _stream_chat(
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
            call.user_id,
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
    return await _stream_chat(call, spec, messages, body, str(conversation_id), store_turn, sources=sources)
