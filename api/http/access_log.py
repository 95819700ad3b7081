"""The API's access log: one line per request, when its answer has ended (a stream when it closes),
in the API's log (`data/logs/api.log` under `make run`), logger `api.access`:

    127.0.0.1 "POST /v1/completions" 200 1834ms

uvicorn's own access log is off (`--no-access-log`): it runs with `--no-proxy-headers`, so it would
name the proxy's address. This middleware sits inside the forwarded-headers one, so it names the
client's, and outside the filters, so their refusals (403, 413) are logged too. The query string is
left out (it is not needed to read the log, and keeps it short); API keys never appear.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("api.access")


class AccessLogMiddleware:
    """Pure ASGI, so streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: an exception that escaped every handler

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = (scope.get("client") or ("-", 0))[0]
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info('%s "%s %s" %d %.0fms', client, scope["method"], scope["path"], status, elapsed_ms)
