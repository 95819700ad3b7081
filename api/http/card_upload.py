"""Files uploaded to the character routes: a card or an avatar, sent as the body or as a form's file.

The body is read no further than the upload limit (plus room for a form's envelope), so an
over-size upload is refused early and never held whole; a card refused by `cards` keeps its reason.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.http.dependencies import settings_dep
from api.http.errors import ApiError
from api.http.openapi_body import inline_schema
from cards.card_json import load_card_json
from cards.limits import CardError, CardLimits
from schemas.characters import CharacterIn
from settings import Settings

# What a multipart envelope (boundaries, part headers) may add to the file it carries.
FORM_OVERHEAD_BYTES = 64 * 1024


def upload_body(*media_types: str) -> dict:
    """The OpenAPI description of a route that takes a file as its body or as a form's `file`."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {"schema": {"type": "object", "properties": {"file": binary["schema"]}}}
    content = {media_type: binary for media_type in media_types} | {"multipart/form-data": form}
    return {"requestBody": {"required": True, "content": content}}


def card_limits(settings: Settings) -> CardLimits:
    return CardLimits(
        max_upload_bytes=settings.card_max_upload_bytes,
        max_json_bytes=settings.card_max_json_bytes,
        max_json_depth=settings.card_max_json_depth,
        max_image_side=settings.card_max_image_side,
        max_image_pixels=settings.card_max_image_pixels,
        avatar_max_side=settings.avatar_max_side,
        avatar_max_bytes=settings.avatar_max_bytes,
    )


@contextmanager
def refusing_bad_cards() -> Iterator[None]:
    """A CardError becomes the API's error answer, with the card's status and reason."""
    try:
        yield
    except CardError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"the upload is over the {limit} byte limit")


async def _capped_body(request: Request, limit: int) -> bytes:
    cap = limit + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise _too_large(limit)
    return bytes(body)


async def _form_file(request: Request, body: bytes) -> bytes:
    async def stream() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=16).parse()
    except MultiPartException as exc:
        raise ApiError(400, "bad_request", f"the form could not be read: {exc.message}") from exc
    files = [value for value in form.values() if isinstance(value, UploadFile)]
    if not files:
        raise ApiError(400, "bad_request", "the form has no file")
    return await files[0].read()


async def uploaded_file(request: Request, limit: int) -> bytes:
    """The uploaded file's bytes: the body itself, or the file of a multipart form."""
    body = await _capped_body(request, limit)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await _form_file(request, body)
    if not body:
        raise ApiError(400, "bad_request", "the upload is empty")
    return body


async def card_body(request: Request, settings: Settings = Depends(settings_dep)) -> CharacterIn:
    """The card of POST/PUT /characters, read here rather than declared as the route's body: FastAPI
    decodes a declared JSON body before any dependency runs, so a stranger's big or broken body would
    be parsed (and answered 422) before the router's key check. Here the key comes first, then the
    import's limits (size, nesting depth), then validation. The body is bounded by the body limit
    middleware."""
    raw = await request.body()
    with refusing_bad_cards():
        document = load_card_json(raw, card_limits(settings))
    try:
        return CharacterIn.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


CARD_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": inline_schema(CharacterIn)}}}
}
