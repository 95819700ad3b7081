"""Every error leaves the API as {"error": {"code", "message"}} with a fitting status code."""

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: list[str] | None = None,
        quota: str | None = None,
    ) -> None:
        """`quota`: for a 429 past a per-key quota, which one (`error.quota`)."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.fields = fields
        self.quota = quota


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[str] | None = None,
    headers: dict[str, str] | None = None,
    quota: str | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, fields=fields, quota=quota))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _field_name(location: tuple) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "header", "path")]
    return ".".join(parts) or ".".join(str(part) for part in location)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields, reasons = [], []
    for error in exc.errors():
        field = _field_name(tuple(error.get("loc", ())))
        fields.append(field)
        reasons.append(f"{field}: {error.get('msg', 'invalid')}")
    return error_response(422, "validation_error", "; ".join(reasons), fields=fields)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(
        exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers, quota=exc.quota
    )


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _dependency_down(_: Request, exc: Exception) -> JSONResponse:
    """503 naming the service, not its error: that names the server's address and the driver's
    internals (timeouts, topology), which are the operator's business, in the log."""
    service = {redis.RedisError: "redis", BrokerError: "redis", PyMongoError: "mongodb"}
    name = next((svc for cls, svc in service.items() if isinstance(exc, cls)), "dependency")
    log.error("%s unavailable: %s", name, exc)
    return error_response(
        503,
        f"{name}_unavailable",
        f"{name} is unavailable; try again shortly",
        headers={"Retry-After": "5"},
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for dependency_error in (redis.RedisError, BrokerError, PyMongoError):
        app.add_exception_handler(dependency_error, _dependency_down)
    app.add_exception_handler(Exception, _unexpected)
