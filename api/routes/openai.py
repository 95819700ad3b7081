"""OpenAI-compatible routes, so the openai SDK and SillyTavern connect unmodified:
`GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions` (streamed or not). Errors in
OpenAI's shape."""

import asyncio

from fastapi import APIRouter, Depends
from starlette.responses import Response

from api.http.auth import Caller, caller_dep
from api.http.dependencies import ChatCall, chat_call
from api.http.errors import ApiError
from api.openai.answer import answer
from api.openai.chat import ChatWriter, completion_jobs, resolve_model
from api.openai.errors import OpenAIRoute
from api.openai.text import TextWriter, refuse_text_unsupported, text_jobs, text_model
from api.openai.unsupported import refuse_unsupported
from api.streams.job_start import serving_spec
from api.turns.sampling import request_sampling
from model_registry import get_registry
from mongo.characters import characters_brief
from schemas.openai import CHARACTER_PREFIX, ChatCompletion, ChatCompletionRequest, Model, ModelList
from schemas.text_completion import Completion, CompletionRequest

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
    jobs = completion_jobs(body, model, card, request_sampling(body, spec, call.settings))
    writer = ChatWriter(jobs[0].job_id, body.model, body.n, body.logprobs)
    return await answer(call, spec, jobs, writer, body.stream, _include_usage(body))


@router.post(
    "/completions",
    summary="A text completion of a raw prompt (no chat template): `text_completion`, streamed with `stream: true`",
    response_model=None,
    responses={200: {"model": Completion, "content": {"text/event-stream": {}}}},
)
async def completions(body: CompletionRequest, call: ChatCall = Depends(chat_call)) -> Response:
    refuse_unsupported(body)
    refuse_text_unsupported(body)
    model = text_model(body, call.settings)
    await resolve_model(model, call.settings, call.user_id)
    spec = await serving_spec(call.client, call.settings, model)
    jobs = text_jobs(body, model, request_sampling(body, spec, call.settings))
    writer = TextWriter(jobs[0].job_id, model, body.logprobs is not None)
    return await answer(call, spec, jobs, writer, body.stream, _include_usage(body))


def _include_usage(body: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_served(path: str) -> None:
    raise ApiError(
        404,
        "not_found",
        f"/v1/{path} is not served here (have /v1/models, /v1/chat/completions, /v1/completions)",
    )
