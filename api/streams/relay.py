"""Relay a job's events to the client, as SSE or as plain text.

A stream reads its events from a source: the process's event hub (registered before the job is
enqueued, so no event can be published unheard) or, to resume, the job's event log (api/streams/job_log.py).
The stream never hangs: while the job waits, a queue left without live workers ends it with an error
(`no_worker`); once started, a worker process whose heartbeat lapses (`worker_lost`, within
WORKER_LOST_AFTER_S) or a worker silent for too long (`worker_timeout`) ends it, and so does a Redis
that fails or does not answer within PROBE_TIMEOUT_S (`redis_unavailable`). A client that goes away
before the end sets the job's cancel flag, which the worker checks at every token, unless the job is
detached.

When the stream ends the job for its client (`no_worker`, `queue_timeout`, `worker_lost`), the job
ends (jobs/transitions.py `end`): its log says why, and no worker runs it later or goes on with it
(a worker still on it is refused at its next write); the partial reply of a lost worker is stored,
marked `error`. A detached job whose worker was lost is left to run again: its message is
redelivered (tasks/chat.py).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio
import redis.asyncio as aioredis
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import StreamingResponse

from api.http.metrics import StreamTimer
from api.streams.worker_status import live_workers, process_alive
from jobs.transitions import cancel_job, end_job
from schemas.events import ErrorData, JobErrorCode, JobEvent, StartedData, TokenData
from settings import Settings

log = logging.getLogger(__name__)

POLL_S = 1.0
# A Redis command of the relay that takes longer than this means Redis is unavailable.
PROBE_TIMEOUT_S = 1.0
REDIS_FAILURES = (aioredis.RedisError, OSError, TimeoutError)
# Errors of the relay's own after which the job must not go on or run later.
# (A silent worker that is still alive, `worker_timeout`, may yet finish and store its reply.)
ENDS_THE_JOB: tuple[JobErrorCode, ...] = ("no_worker", "queue_timeout", "worker_lost")
# How long a stream has, once the server starts shutting down, to send its terminal event: it
# notices the shutdown at its next event or poll (POLL_S) at the latest.
SHUTDOWN_GRACE_S = 3 * POLL_S

# The user's turn is kept; so is what the lost worker had said: (text so far) -> None.
KeepPartial = Callable[[str], Awaitable[None]]
# Send the job of a lost attempt to another worker (api/streams/takeover.py): (attempt) -> sent.
TakeOver = Callable[[int], Awaitable[bool]]
# A worker that is gone or silent hands its job over (when the stream can), instead of ending it.
TAKEN_OVER_AFTER: tuple[JobErrorCode, ...] = ("worker_lost", "worker_timeout")
TAKEOVER_TIMEOUT_S = 5.0
_background: set[asyncio.Task] = set()


class EventSource(Protocol):
    """Where a stream reads the job's events (in order, `started` included)."""

    async def open(self) -> None: ...

    async def receive(self, timeout_s: float) -> list[JobEvent]:
        """The next events, or [] when none came within timeout_s."""
        ...

    async def aclose(self) -> None: ...


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
        resumed: bool = False,
        keep_partial: KeepPartial | None = None,
        quota: str | None = None,
        take_over: TakeOver | None = None,
    ) -> None:
        """`resumed`: a stream read again (GET /jobs/{id}/events), which never cancels the job nor
        ends it for its client. `take_over`: how the job goes to another worker when its own is lost
        (None: the stream ends with the error instead)."""
        self.job_id = job_id
        self._client = client
        self._queue = queue
        self._settings = settings
        self._source = source
        self._detach = detach
        self._next_id = next_id
        self._resumed = resumed
        self._keep_partial = keep_partial
        self._quota = quota
        self._take_over_job = take_over
        self._process: str | None = None  # the worker process running the job, from `started`
        self._attempt = 0  # the job's attempt running it, from `started`
        self._taken_over_at: float | None = None  # when it last went to another worker
        self._finished = False
        self._shutdown: anyio.Event | None = None

    def end_on(self, shutdown: anyio.Event) -> None:
        """End the stream with `error` `shutting_down` once `shutdown` is set (the server is
        stopping), so its client sees a terminal event before the connection closes. The job is
        treated as for a client that left: cancelled unless detached."""
        self._shutdown = shutdown

    async def subscribe(self) -> None:
        await self._source.open()

    async def close(self) -> None:
        """Stop reading; if the stream did not reach its end, ask the worker to stop (unless detached)."""
        try:
            if not self._finished and not self._detach and not self._resumed:
                with contextlib.suppress(*REDIS_FAILURES):
                    await asyncio.wait_for(
                        cancel_job(self._client, self.job_id, self._queue, self._quota), PROBE_TIMEOUT_S
                    )
        finally:
            await self._source.aclose()

    async def events(self) -> AsyncIterator[JobEvent]:
        """The job's events, ending with `done` or `error`."""
        started = False
        waiting_since = last_heard = time.monotonic()
        timer = StreamTimer()
        pieces: list[str] = []
        try:
            while True:
                if self._shutdown is not None and self._shutdown.is_set():
                    error = JobEvent(id=self._next_id, event="error", data=_SHUTTING_DOWN)
                    timer.event(error)
                    yield error
                    return
                try:
                    batch = await self._source.receive(POLL_S)
                except REDIS_FAILURES:
                    batch, failure = [], _redis_unavailable()
                else:
                    failure = None
                now = time.monotonic()
                if not batch:
                    failure = failure or await self._probe(started, now - waiting_since, now - last_heard)
                    if failure and started and await self._take_over(failure, timer):
                        started, waiting_since, last_heard = False, now, now
                        continue
                    if failure:
                        error = await self._end(*failure, "".join(pieces))
                        timer.event(error)
                        yield error
                        return
                    continue
                last_heard = now
                for event in batch:
                    if isinstance(event.data, StartedData):
                        started = True
                        self._process, self._attempt = event.data.process, event.data.attempt
                        timer.started()
                        continue
                    if isinstance(event.data, TokenData):
                        pieces.append(event.data.text)
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

    async def _take_over(self, failure: tuple[JobErrorCode, str], timer: StreamTimer) -> bool:
        """Whether the job went to another worker (the stream goes on, waiting for it)."""
        code, message = failure
        if code not in TAKEN_OVER_AFTER or self._take_over_job is None or self._resumed or not self._attempt:
            return False
        try:
            sent = await asyncio.wait_for(self._take_over_job(self._attempt), TAKEOVER_TIMEOUT_S)
        except Exception:  # Redis or the broker failing: the stream ends with the worker's error
            log.warning("job %s: %s, and it could not be taken over", self.job_id, message, exc_info=True)
            return False
        if sent:
            log.warning("job %s: %s; it goes to another worker (takeover)", self.job_id, message)
            timer.taken_over(code)
        # Not sent: another stream or the recovery sweep sent it, or the job moved on (its next
        # `started` or its end is on the way); either way the stream waits, at most TAKEOVER_WAIT_S.
        self._taken_over_at = time.monotonic()
        return True

    async def _probe(
        self, started: bool, waited_s: float, silent_s: float
    ) -> tuple[JobErrorCode, str] | None:
        try:
            return await asyncio.wait_for(self._failure(started, waited_s, silent_s), PROBE_TIMEOUT_S)
        except REDIS_FAILURES:
            return _redis_unavailable()

    async def _failure(
        self, started: bool, waited_s: float, silent_s: float
    ) -> tuple[JobErrorCode, str] | None:
        if started:
            lost_after_s = self._settings.worker_lost_after_s
            if self._process and not await process_alive(
                self._client, self._queue, self._process, lost_after_s
            ):
                return "worker_lost", f"the worker process running the job ({self._process}) was lost"
            if silent_s > self._settings.stream_silence_timeout_s:
                return "worker_timeout", f"the worker sent nothing for {silent_s:.0f}s"
            return None
        if self._taken_over_at is not None:  # a worker may be starting again (the launcher's restart)
            waited_s = time.monotonic() - self._taken_over_at
            if waited_s > self._settings.takeover_wait_s:
                return (
                    "worker_lost",
                    f"its worker was lost and no worker took the job over in {waited_s:.0f}s",
                )
        elif not await live_workers(self._client, self._queue, self._settings.worker_heartbeat_ttl_s):
            return "no_worker", f"no live worker is serving queue {self._queue!r}"
        if waited_s > self._settings.queue_timeout_s:
            return "queue_timeout", f"no worker started the job within {waited_s:.0f}s"
        return None

    async def _end(self, code: JobErrorCode, message: str, text: str) -> JobEvent:
        """The stream's own last event. Where it ends the job for its client, the job ends in Redis
        (jobs/transitions.py `end`), whose event id it takes; a lost worker's partial reply is kept."""
        log.warning("job %s: %s", self.job_id, message)
        self._finished = True
        error = ErrorData(code=code, message=message)
        event_id = await self._end_job(error) if self._ends_job(code) else None
        if event_id is not None and code == "worker_lost" and self._keep_partial is not None:
            task = asyncio.create_task(self._keep_partial(text))  # not holding up the error event
            _background.add(task)
            task.add_done_callback(_background.discard)
        return JobEvent(id=self._next_id if event_id is None else event_id, event="error", data=error)

    def _ends_job(self, code: JobErrorCode) -> bool:
        return not self._resumed and code in ENDS_THE_JOB and not (self._detach and code == "worker_lost")

    async def _end_job(self, error: ErrorData) -> int | None:
        """The error event's id in the job's log; None when the job had ended already or Redis failed."""
        try:
            return await asyncio.wait_for(
                end_job(
                    self._client, self.job_id, error, self._settings.job_log_ttl_s,
                    quota=self._quota, queue=self._queue,
                ),
                PROBE_TIMEOUT_S,
            )  # fmt: skip
        except REDIS_FAILURES:
            log.warning("job %s: its end (%s) could not be recorded", self.job_id, error.code)
            return None


_SHUTTING_DOWN = ErrorData(code="shutting_down", message="the server is shutting down; try again shortly")


def _redis_unavailable() -> tuple[JobErrorCode, str]:
    return "redis_unavailable", "Redis is unavailable: the job's events cannot reach this stream"


def sse_response(stream: JobStream, headers: dict[str, str]) -> EventSourceResponse:
    """The stream as SSE; when the server shuts down (sse-starlette hears uvicorn's exit signal), it
    ends with `error` `shutting_down` before the connection closes."""

    async def sse() -> AsyncIterator[ServerSentEvent]:
        async for event in stream.events():
            yield ServerSentEvent(data=event.data.model_dump_json(), event=event.event, id=str(event.id))

    shutdown = anyio.Event()
    stream.end_on(shutdown)
    return EventSourceResponse(
        sse(), headers=headers, shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_GRACE_S
    )


def plain_text_response(stream: JobStream, headers: dict[str, str]) -> StreamingResponse:
    """The original's answer: the text chunks alone (an error ends it with a marked line)."""

    async def text() -> AsyncIterator[str]:
        async for event in stream.events():
            if isinstance(event.data, TokenData):
                yield event.data.text
            elif isinstance(event.data, ErrorData):
                yield f"\n[error {event.data.code}] {event.data.message}"

    return StreamingResponse(text(), media_type="text/plain; charset=utf-8", headers=headers)
