"""A chat turn as a streamed response, the same for every chat route: make the job, start it while the
user's turn is written, then relay its events as SSE or, when the client asks for it, plain text."""

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from api.http.dependencies import ChatCall
from api.streams.job_start import serving_spec, start_job
from api.streams.relay import plain_text_response, sse_response
from api.turns.chat_messages import chat_job
from api.turns.conversation_turns import Turn
from api.turns.sampling import chat_sampling
from model_registry import ModelSpec
from schemas.chat import GenerationParams
from schemas.jobs import ChatMessage

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


async def stream_chat(
    call: ChatCall,
    spec: ModelSpec,
    messages: list[ChatMessage],
    params: GenerationParams,
    conversation_id: str,
    store_turn: Callable[[str], None],
    **job_fields: Any,
) -> Response:
    """Register for the job's events, enqueue it while the user's turn is written, then relay."""
    job = chat_job(
        spec.name,
        messages,
        sampling=chat_sampling(params, call.settings),
        conversation_id=conversation_id,
        detach=params.detach,
        **job_fields,
    )
    writing = asyncio.to_thread(store_turn, job.job_id)
    stream = await start_job(call, spec, job, params.detach, writing)
    headers = {"X-Job-Id": job.job_id, "X-Conversation-Id": conversation_id}
    if _wants_plain_text(call.request):
        return plain_text_response(stream, headers)
    return sse_response(stream, headers)


async def stream_turn(call: ChatCall, turn: Turn, params: GenerationParams, **job_fields: Any) -> Response:
    """Stream a turn of a stored conversation (its history, trimmed by the worker to fit)."""
    spec = await serving_spec(call.client, call.settings, turn.model)
    return await stream_chat(
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
