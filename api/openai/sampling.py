"""A /v1/chat/completions or text completion request's sampling surface, translated into what a chat job carries: penalties,
logit bias, logprobs and a grammar for `response_format`; and the refusal, by name, of every request
field this service does not implement (`tools`, `audio`, ...), so nothing a client asks for is
silently ignored."""

import json
from typing import Any

from api.http.errors import ApiError
from model_registry import ModelSpec
from schemas.openai import ChatCompletionRequest, ResponseFormat, SamplingRequest


def refuse_unsupported(body: SamplingRequest) -> None:
    """400 naming the fields the route does not implement."""
    unknown = sorted(body.model_extra or {})
    if unknown:
        raise ApiError(
            400,
            "unsupported_parameter",
            f"not supported by this server: {', '.join(_named(body, unknown))}",
            fields=unknown,
        )
    if isinstance(body, ChatCompletionRequest) and body.top_logprobs is not None and not body.logprobs:
        raise ApiError(400, "invalid_parameter", "top_logprobs needs logprobs: true", fields=["top_logprobs"])


def _named(body: SamplingRequest, names: list[str]) -> list[str]:
    """Each field's name, and its value where it is a short scalar (`typical_p=0.9`): a client that
    sends every sampler at once learns which value to change."""
    extra = body.model_extra or {}
    return [
        f"{name}={extra[name]!r}" if isinstance(extra[name], int | float | bool) else name for name in names
    ]


def job_sampling(body: SamplingRequest, spec: ModelSpec) -> dict[str, Any]:
    """The SamplingParams fields the request sets beyond the common ones (temperature, top_p, seed, stop)."""
    fields: dict[str, Any] = {
        name: value
        for name, value in body.model_dump(
            include={"presence_penalty", "frequency_penalty", "logit_bias", "top_k", "min_p"}
        ).items()
        if value is not None
    }
    if body.repetition_penalty is not None:
        fields["repeat_penalty"] = body.repetition_penalty
    if body.top_logprob_count is not None:
        fields["logprobs"] = body.top_logprob_count
    if not isinstance(body, ChatCompletionRequest):
        return fields
    grammar = _grammar(body.response_format)
    if grammar is not None:
        if spec.runtime != "llama_cpp":
            raise ApiError(
                400,
                "unsupported",
                f"response_format {body.response_format.type!r} needs a llama.cpp model; "
                f"{spec.name!r} runs on {spec.runtime}",
                fields=["response_format"],
            )
        fields["grammar"] = grammar
    return fields


def choice_seeds(seed: int | None, n: int) -> list[int | None]:
    """Each choice's seed: seed + i, so choices differ yet a request stays reproducible."""
    return [None if seed is None else (seed + i) % 2**32 for i in range(n)]


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
