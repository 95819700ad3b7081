"""A request body limit on every route, enforced while the body is read: 413 with the limit.

A declared Content-Length over the limit is refused before a byte of the body is read; a body sent
without one (chunked) is counted as it arrives and refused at the first chunk past the limit, so the
API never holds more than about the limit of any request. Most routes take small JSON
(`MAX_BODY_BYTES`); the upload routes have their own, larger limits (cards, avatars, datasets,
batches), looked up by method and path here since the limit must be known before routing.
"""

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.card_upload import FORM_OVERHEAD_BYTES
from api.http.errors import error_response
from settings import Settings

BODY_METHODS = {"POST", "PUT", "PATCH"}


def route_limits(settings: Settings) -> list[tuple[str, re.Pattern[str], int]]:
    """(method, path, limit) of the routes whose bodies may be larger than MAX_BODY_BYTES."""
    card_upload = settings.card_max_upload_bytes + FORM_OVERHEAD_BYTES
    table = [
        ("POST", r"/characters/import", card_upload),
        ("PUT", r"/characters/[^/]+/avatar", card_upload),
        ("POST", r"/characters", settings.card_max_json_bytes),
        ("PUT", r"/characters/[^/]+", settings.card_max_json_bytes),
        ("POST", r"/datasets/[^/]+", settings.dataset_max_upload_bytes),
        ("POST", r"/batches", settings.batch_max_body_bytes),
    ]
    return [(method, re.compile(path), limit) for method, path, limit in table]


def too_large_message(limit: int) -> str:
    return f"the request body is over the {limit} byte limit of this route"


class BodyLimitMiddleware:
    """Pure ASGI: the body passes through chunk by chunk, counted, never gathered here."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.default = settings.max_body_bytes
        self.routes = route_limits(settings)

    def limit_for(self, method: str, path: str) -> int:
        for route_method, pattern, limit in self.routes:
            if method == route_method and pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(413, "payload_too_large", too_large_message(limit))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the reader (request.body(), request.stream()): the app's error
                    # handler turns it into the 413 before any response has started.
                    raise HTTPException(413, too_large_message(limit))
            return message

        await self.app(scope, counted, send)
