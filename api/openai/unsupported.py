"""The refusal, by name, of every field of a /v1 or text completion request that this service does
not implement (`tools`, `audio`, ...), so nothing a client asks for is silently ignored. What it does
implement becomes the job's sampling in api/turns/sampling.py."""

from api.http.errors import ApiError
from schemas.openai import ChatCompletionRequest, SamplingRequest


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
