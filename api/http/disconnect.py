"""A route that waits for a job's end before it answers (no stream) stops the job when its client
hangs up, as a stream does.

A streamed response notices the hang-up itself (sse_starlette, StreamingResponse); an awaiting route
does not, so it races its work against the ASGI `http.disconnect` message. Cancelling the work
closes the job's stream, which sets the job's cancel flag.
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")

# nginx's status for "the client closed the request": never seen by the client, only in logs and metrics.
CLIENT_CLOSED_REQUEST = 499


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is already read: only the disconnect can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None once the client has hung up (the work is then cancelled)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
