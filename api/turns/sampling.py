"""Every request shape made into the job's `SamplingParams`, in one place:

- the chat routes' `GenerationParams` (/Lumimaid_stream, /Llama_stream, a conversation's turn, regenerate and
  continue) and a batch item's `params`: `chat_sampling`;
- `/v1/chat/completions`, `/v1/completions` and llama-server's `/completion` (another backend's field
  names, `n_predict`, `rep_pen`, `seed: -1`..., already brought to ours by schemas/textgen_fields.py):
  `request_sampling`, then `choice_samplings` for its `n` choices.

A knob the request leaves unset (or null) takes schemas/sampling.py's DEFAULTS, the same on every route;
the reply's length, the setting DEFAULT_MAX_TOKENS.
"""

import json
from typing import Any

from api.http.errors import ApiError
from model_registry import ModelSpec
from schemas.chat import GenerationParams
from schemas.jobs import SamplingParams
from schemas.openai import ChatCompletionRequest, ResponseFormat, SamplingRequest
from settings import Settings

# The knobs an OpenAI-shaped request and the job name alike.
SAME_NAMES = {
    "temperature", "top_p", "seed", "stop", "top_k", "min_p", "presence_penalty", "frequency_penalty", "logit_bias"
}  # fmt: skip


def chat_sampling(params: GenerationParams, settings: Settings) -> SamplingParams:
    return _sampling(
        settings, params.max_tokens, temperature=params.temperature, top_p=params.top_p, seed=params.seed
    )


def request_sampling(body: SamplingRequest, spec: ModelSpec, settings: Settings) -> SamplingParams:
    """An OpenAI-shaped request's sampling; `response_format` becomes a grammar (llama.cpp models only)."""
    grammar = _grammar(body.response_format) if isinstance(body, ChatCompletionRequest) else None
    if grammar is not None and spec.runtime != "llama_cpp":
        raise ApiError(
            400,
            "unsupported",
            f"response_format {body.response_format.type!r} needs a llama.cpp model; "
            f"{spec.name!r} runs on {spec.runtime}",
            fields=["response_format"],
        )
    return _sampling(
        settings,
        body.reply_tokens,
        **body.model_dump(include=SAME_NAMES),
        repeat_penalty=body.repetition_penalty,
        logprobs=body.top_logprob_count,
        grammar=grammar,
    )


def choice_samplings(sampling: SamplingParams, n: int) -> list[SamplingParams]:
    """Each choice's sampling: seed + i, so choices differ yet a request stays reproducible."""
    seed = sampling.seed
    return [
        sampling.model_copy(update={"seed": None if seed is None else (seed + i) % 2**32}) for i in range(n)
    ]


def _sampling(settings: Settings, max_tokens: int | None, **given: Any) -> SamplingParams:
    """What the request gives; what it leaves unset (None), `SamplingParams`' defaults (DEFAULTS)."""
    return SamplingParams(
        max_tokens=max_tokens or settings.default_max_tokens,
        **{name: value for name, value in given.items() if value is not None},
    )


def _grammar(response_format: ResponseFormat | None) -> str | None:
    """The GBNF grammar (llama.cpp's JSON-schema converter) a reply in that format must match."""
    if response_format is None or response_format.type == "text":
        return None
    # Imported here: only a request that asks for JSON needs llama.cpp's grammar tools in the API.
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if response_format.type == "json_object":
        return JSON_GBNF
    if response_format.json_schema is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "response_format json_schema needs json_schema.schema",
            fields=["response_format.json_schema"],
        )
    try:
        return json_schema_to_gbnf(json.dumps(response_format.json_schema.schema_))
    except Exception as exc:  # the converter raises asserts, KeyErrors, ValueErrors...
        raise ApiError(
            400,
            "invalid_json_schema",
            f"response_format.json_schema.schema cannot be turned into a grammar: {type(exc).__name__}: {exc}",
            fields=["response_format.json_schema.schema"],
        ) from exc
