"""llama-server's native API, as far as SillyTavern's llama.cpp Text Completion type uses it:
`POST /completion` (a raw prompt, streamed as `{"content", "stop"}` chunks), `POST /tokenize`,
`POST /detokenize` (its token counts and banned tokens) and `GET /props` (the context window).

One llama-server serves one model; here the body may name a registry model (`model`), else the
server's default one (`openai_character_model`) answers. A completion is the same job as
`/v1/completions` (api/openai/text.py); the tokenizer is the API's copy of the model's vocabulary
(runtimes/vocabulary.py), the one prompts are counted with.
"""

import asyncio

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from api.http.dependencies import ChatCall, chat_call, settings_dep
from api.http.errors import ApiError
from api.openai.answer import answer
from api.openai.text import LlamaWriter, refuse_text_unsupported, text_jobs, text_model
from api.openai.unsupported import refuse_unsupported
from api.streams.job_start import serving_spec
from api.streams.prompt_limit import vocabulary_of
from api.turns.sampling import request_sampling
from model_registry import ModelSpec, get_registry
from runtimes.vocabulary import Vocabulary
from schemas.jobs import ChatMessage
from schemas.text_completion import (
    CompletionRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    LlamaCompletion,
    Props,
    TokenizeRequest,
    TokenizeResponse,
    TokenPiece,
)
from settings import Settings

router = APIRouter(tags=["llama-server compatible"])


@router.post(
    "/completion",
    summary="llama-server's completion of a raw prompt (no chat template); `stream: true` for SSE chunks",
    response_model=None,
    responses={200: {"model": LlamaCompletion, "content": {"text/event-stream": {}}}},
)
async def completion(body: CompletionRequest, call: ChatCall = Depends(chat_call)) -> Response:
    refuse_unsupported(body)
    refuse_text_unsupported(body)
    if not isinstance(body.prompt, str) or body.n != 1:
        raise ApiError(
            400, "invalid_parameter", "/completion takes one prompt string and one choice", fields=["prompt"]
        )
    model = text_model(body, call.settings)
    spec = await serving_spec(call.client, call.settings, model)
    jobs = text_jobs(body, model, request_sampling(body, spec, call.settings))
    return await answer(call, spec, jobs, LlamaWriter(model, body.logprobs is not None), body.stream)


def _spec(model: str | None, settings: Settings) -> ModelSpec:
    name = model or settings.openai_character_model
    spec = get_registry().get(name)
    if spec is None:
        raise ApiError(
            404, "model_not_found", f"the model {name!r} does not exist (see /v1/models)", fields=["model"]
        )
    return spec


async def _vocabulary(spec: ModelSpec, settings: Settings) -> Vocabulary:
    vocabulary = await vocabulary_of(spec, settings)
    if vocabulary is None:
        raise ApiError(503, "no_tokenizer", f"the API holds no tokenizer for {spec.name!r}")
    return vocabulary


@router.post("/tokenize", summary="llama-server's tokenizer: control tokens in the text are read as such")
async def tokenize(body: TokenizeRequest, settings: Settings = Depends(settings_dep)) -> TokenizeResponse:
    vocabulary = await _vocabulary(_spec(body.model, settings), settings)
    if body.add_special:
        message = ChatMessage(role="user", content=body.content, raw=True)
        tokens = await asyncio.to_thread(vocabulary.prompt_tokens, [message])
    else:
        tokens = await asyncio.to_thread(vocabulary.encode, body.content, True)
    if not body.with_pieces:
        return TokenizeResponse(tokens=tokens)
    return TokenizeResponse(
        tokens=[TokenPiece(id=token, piece=vocabulary.decode([token])) for token in tokens]
    )


@router.post("/detokenize", summary="llama-server's detokenizer")
async def detokenize(
    body: DetokenizeRequest, settings: Settings = Depends(settings_dep)
) -> DetokenizeResponse:
    vocabulary = await _vocabulary(_spec(body.model, settings), settings)
    outside = [token for token in body.tokens if not 0 <= token < vocabulary.n_vocab]
    if outside:
        raise ApiError(
            400,
            "invalid_token",
            f"token ids must be in [0, {vocabulary.n_vocab}); got {outside[:5]}",
            fields=["tokens"],
        )
    return DetokenizeResponse(content=await asyncio.to_thread(vocabulary.decode, body.tokens))


@router.get("/props", summary="llama-server's properties: the model's context window and slots")
async def props(
    model: str | None = Query(default=None, max_length=200), settings: Settings = Depends(settings_dep)
) -> Props:
    spec = _spec(model, settings)
    vocabulary = await _vocabulary(spec, settings)
    return Props(
        default_generation_settings={
            "n_ctx": vocabulary.n_ctx,
            "model": spec.name,
            "params": {"n_predict": settings.default_max_tokens},
        },
        total_slots=spec.max_sequences,
        model_path=spec.name,
    )
