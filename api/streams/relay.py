"""Relay a job's events to the client, as SSE or as plain text.

A stream reads its events from a source: the process's event hub (registered before the job is
enqueued, so no event can be published unheard) or, to resume, the job's event log (api/streams/job_log.py).
The stream never hangs: while the job waits, a queue left without live workers ends it with an error;
once started, a worker silent for too long ends it with an error. A client that goes away before
the end sets the job's cancel flag, which the worker checks at every token, unless the job is detached.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import redis.asyncio as aioredis
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import StreamingResponse

from api.http.metrics import StreamTimer
from api.streams.worker_status import live_workers
from schemas.events import ErrorData, JobEvent, TokenData
from schemas.redis_keys import job_cancel_key
from settings import Settings

log = logging.getLogger(__name__)

CANCEL_FLAG_TTL_S = 3600
POLL_S = 1.0


class EventSource(Protocol):
    """Where a stream reads the job's events (in order, `started` included)."""

    async def open(self) -> None: ...

    async def receive(self, timeout_s: float) -> list[JobEvent]:
        """The next events, or [] when none came within timeout_s."""
        ...

    async def aclose(self) -> None: ...


async def cancel_jobs(client: aioredis.Redis, job_ids: Iterable[str]) -> None:
    """Ask the workers to stop the jobs at their next token (or before they start), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.set(job_cancel_key(job_id), 1, ex=CANCEL_FLAG_TTL_S)
    await pipe.execute()


async def cancel_job(client: aioredis.Redis, job_id: str) -> None:
    await cancel_jobs(client, [job_id])


class JobStream:
    def __init__(
        self,
        client: aioredis.Redis,
        job_id: str,
        queue: str,
        settings: Settings,
        *,
        source: EventSource,
        detach: bool = False,
        next_id: int = 0,
    ) -> None:
        self.job_id = job_id
        self._client = client
        self._queue = queue
        self._settings = settings
        self._source = source
        self._detach = detach
        self._next_id = next_id
        self._finished = False

    async def subscribe(self) -> None:
        await self._source.open()

    async def close(self) -> None:
        """Stop reading; if the stream did not reach its end, ask the worker to stop (unless detached)."""
        try:
            if not self._finished and not self._detach:
                await cancel_job(self._client, self.job_id)
        finally:
            await self._source.aclose()

    async def events(self) -> AsyncIterator[JobEvent]:
        """The job's events, ending with `done` or `error`."""
        started = False
        waiting_since = last_heard = time.monotonic()
        timer = StreamTimer()
        try:
            while True:
                batch = await self._source.receive(POLL_S)
                now = time.monotonic()
                if not batch:
                    failure = await self._failure(started, now - waiting_since, now - last_heard)
                    if failure:
                        error = self._final_error(*failure)
                        timer.event(error)
                        yield error
                        return
                    continue
                last_heard = now
                for event in batch:
                    if event.event == "started":
                        started = True
                        timer.started()
                        continue
                    timer.event(event)
                    self._next_id = event.id + 1
                    if event.is_final:
                        self._finished = True
                    yield event
                    if self._finished:
                        return
        finally:
            timer.closed()
            await asyncio.shield(self.close())

    async def _failure(self, started: bool, waited_s: float, silent_s: float) -> tuple[str, str] | None:
        if started:
            if silent_s > self._settings.stream_silence_timeout_s:
                return "worker_timeout", f"the worker sent nothing for {silent_s:.0f}s"
            return None
        if not await live_workers(self._client, self._queue, self._settings.worker_heartbeat_ttl_s):
            return "no_worker", f"no live worker is serving queue {self._queue!r}"
        if waited_s > self._settings.queue_timeout_s:
            return "queue_timeout", f"no worker started the job within {waited_s:.0f}s"
        return None

    def _final_error(self, code: str, message: str) -> JobEvent:
        log.warning("job %s: %s", self.job_id, message)
        self._finished = True
        return JobEvent(id=self._next_id, event="error", data=ErrorData(code=code, message=message))


def sse_response(stream: JobStream, headers: dict[str, str]) -> EventSourceResponse:
    async def sse() -> AsyncIterator[ServerSentEvent]:
        async for event in stream.events():
            yield ServerSentEvent(data=event.data.model_dump_json(), event=event.event, id=str(event.id))

    return EventSourceResponse(sse(), headers=headers)


def plain_text_response(stream: JobStream, headers: dict[str, str]) -> StreamingResponse:
    """The original's answer: the text chunks alone (an error ends it with a marked line)."""

    async def text() -> AsyncIterator[str]:
        async for event in stream.events():
            if isinstance(event.data, TokenData):
                yield event.data.text
            elif isinstance(event.data, ErrorData):
                yield f"\n[error {event.data.code}] {event.data.message}"

    return StreamingResponse(text(), media_type="text/plain; charset=utf-8", headers=headers)
