"""A pure ASGI middleware that learns how each HTTP request was answered: its status once the answer
has ended (a stream when it closes), 500 when no answer started (an exception escaped every handler).
Pure ASGI, so streamed responses pass through untouched."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AnsweredMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def answered(self, scope: Scope, status: int, elapsed_s: float) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.answered(scope, status, time.perf_counter() - started)
