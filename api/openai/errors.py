"""OpenAI's error shape on the /v1 routes: {"error": {"message", "type", "param", "code"}}.

The service's own exception handlers (api/http/errors.py) still decide the status and the code; this route
class only reshapes their answer, so the two shapes cannot disagree about what went wrong.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from schemas.openai import OpenAIError, OpenAIErrorDetail

ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def openai_error(status: int, code: str, message: str, param: str | None = None) -> OpenAIError:
    return OpenAIError(
        error=OpenAIErrorDetail(message=message, type=error_type(status), param=param, code=code)
    )


def reshaped(response: Response) -> JSONResponse:
    """The service's {"error": {"code", "message", "fields"}} answer in OpenAI's shape."""
    error = json.loads(response.body)["error"]
    body = openai_error(
        response.status_code, error["code"], error["message"], (error.get("fields") or [None])[0]
    )
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("content-length", "content-type")
    }
    return JSONResponse(body.model_dump(), status_code=response.status_code, headers=headers)


async def _service_answer(request: Request, exc: Exception) -> Response:
    handlers = request.app.exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    return await handler(request, exc)


class OpenAIRoute(APIRoute):
    """A route whose errors (validation and dependency errors included) leave in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_openai_shape(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                return reshaped(await _service_answer(request, exc))

        return handle_in_openai_shape
