"""OpenAI-compatible routes, so the openai SDK and SillyTavern connect unmodified:
`GET /v1/models` and `POST /v1/chat/completions` (streamed or not). Errors in OpenAI's shape."""

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from api.http.auth import Caller, caller_dep
from api.http.dependencies import ChatCall, chat_call
from api.http.disconnect import CLIENT_CLOSED_REQUEST, unless_disconnected
from api.http.errors import ApiError
from api.openai.chat import CompletionWriter, completion_jobs, resolve_model
from api.openai.errors import OpenAIRoute
from api.openai.sampling import job_sampling, refuse_unsupported
from api.streams.job_start import serving_spec, start_job
from api.streams.relay import JobStream
from model_registry import ModelSpec, get_registry
from mongo.characters import characters_brief
from schemas.jobs import ChatJob
from schemas.openai import CHARACTER_PREFIX, ChatCompletion, ChatCompletionRequest, Model, ModelList

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], route_class=OpenAIRoute)


def _stored_characters(owner: str) -> list[Model]:
    return [
        Model(
            id=f"{CHARACTER_PREFIX}{character.name}",
            created=int(character.created_at.timestamp()),
            owned_by="character",
        )
        for character in characters_brief(owner)
    ]


async def _models(caller: Caller) -> list[Model]:
    models = [Model(id=name, created=0, owned_by="chatbot") for name in get_registry()]
    return models + await asyncio.to_thread(_stored_characters, caller.user_id)


@router.get("/models", summary="The registry's models and the stored characters (`character:<name>`)")
async def list_models(caller: Caller = Depends(caller_dep)) -> ModelList:
    return ModelList(data=await _models(caller))


@router.get("/models/{model:path}", summary="One model")
async def retrieve_model(model: str, caller: Caller = Depends(caller_dep)) -> Model:
    found = next((entry for entry in await _models(caller) if entry.id == model), None)
    if found is None:
        raise ApiError(404, "model_not_found", f"the model {model!r} does not exist (see /v1/models)")
    return found


@router.post(
    "/chat/completions",
    summary="A chat completion: `chat.completion`, or `chat.completion.chunk` SSE with `stream: true`",
    response_model=None,
    responses={200: {"model": ChatCompletion, "content": {"text/event-stream": {}}}},
)
async def chat_completions(body: ChatCompletionRequest, call: ChatCall = Depends(chat_call)) -> Response:
    refuse_unsupported(body)
    model, card = await resolve_model(body.model, call.settings, call.user_id)
    spec = await serving_spec(call.client, call.settings, model)
    jobs = completion_jobs(body, model, card, job_sampling(body, spec), call.settings)
    streams = await _start_jobs(call, spec, jobs)
    writer = CompletionWriter(jobs[0].job_id, body.model, body.n, body.logprobs)
    # X-Job-Id: the first choice's job (its log: GET /jobs/{id}); X-Job-Ids: every choice's, in order.
    headers = {"X-Job-Id": jobs[0].job_id, "X-Job-Ids": ",".join(job.job_id for job in jobs)}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(writer.chunks(streams, include_usage), headers=headers)
    completion = await unless_disconnected(call.request, writer.completion(streams))
    if completion is None:  # the client has gone, and with it the job
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return JSONResponse(completion.model_dump(), headers=headers)


async def _start_jobs(call: ChatCall, spec: ModelSpec, jobs: list[ChatJob]) -> list[JobStream]:
    """Start every choice's job, or none: a refusal (429, 400) cancels those already started."""
    streams: list[JobStream] = []
    try:
        for job in jobs:
            streams.append(await start_job(call, spec, job, detach=False))
    except BaseException:
        for stream in streams:
            await stream.close()
        raise
    return streams


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_served(path: str) -> None:
    raise ApiError(404, "not_found", f"/v1/{path} is not served here (have /v1/models, /v1/chat/completions)")
