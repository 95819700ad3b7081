"""The one error shape of every non-2xx answer: {"error": {"code", "message"}}."""

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[str] | None = None
    quota: str | None = None  # a 429 past a per-key quota: which one


class ErrorResponse(BaseModel):
    error: ErrorDetail
