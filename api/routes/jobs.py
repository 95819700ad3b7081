"""A job after its request: its state (`GET /jobs/{id}`), its events again from any point
(`GET /jobs/{id}/events` with Last-Event-ID), and a cancel for a job no stream is holding."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, Path, Query
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from api.http.auth import Caller, caller_dep
from api.http.dependencies import redis_dep, settings_dep
from api.http.errors import ApiError
from api.streams.job_log import LogSource
from api.streams.job_status import summarize
from api.streams.relay import JobStream, sse_response
from jobs.log import LogEntry, read_log_async
from jobs.states import ENDED
from jobs.transitions import cancel_job
from schemas.job_log import JobStatus
from settings import Settings

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the X-Job-Id of the chat response")
]


@dataclass(frozen=True)
class SeenJob:
    """A job the caller may see, read from its log, with what its log says of it."""

    job_id: str
    client: aioredis.Redis
    settings: Settings
    entries: list[LogEntry]
    status: JobStatus


def owns(caller: Caller, first: LogEntry) -> bool:
    return caller.is_admin or (first.queued is not None and first.queued.owner == caller.user_id)


async def seen_job(
    job_id: JobId,
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
    caller: Caller = Depends(caller_dep),
) -> SeenJob:
    """The job, if the caller may see it: their own job (any, for an admin). Another user's job is
    not found, like one that never was."""
    entries = await read_log_async(client, job_id)
    if not entries or not owns(caller, entries[0]):
        raise ApiError(404, "not_found", f"job {job_id!r} not found (unknown, or its log has expired)")
    status = summarize(job_id, entries, settings.queue_timeout_s, datetime.now(UTC))
    return SeenJob(job_id, client, settings, entries, status)


@router.get("/{job_id}", summary="A job's state, text so far and timings")
async def job_status(job: SeenJob = Depends(seen_job)) -> JobStatus:
    return job.status


@router.get(
    "/{job_id}/events",
    summary="A job's events as SSE: those after Last-Event-ID, then the live rest",
    response_class=EventSourceResponse,
    responses={204: {"description": "the job has ended and Last-Event-ID is its last event: nothing more"}},
)
async def job_events(
    last_event_id_header: int | None = Header(default=None, alias="Last-Event-ID", ge=0),
    last_event_id: int | None = Query(default=None, ge=0, description="instead of the Last-Event-ID header"),
    job: SeenJob = Depends(seen_job),
) -> Response:
    """Reading this stream never cancels the job: only the request that started it can (or DELETE).

    A client that has seen the job's last event (an EventSource reconnecting after `done`) gets 204,
    which tells an EventSource to stop reconnecting."""
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    status, job_id = job.status, job.job_id
    if after is not None and status.state in ENDED and after >= (status.last_event_id or 0):
        return Response(status_code=204, headers={"X-Job-Id": job_id})
    if after is not None and (status.last_event_id is None or after > status.last_event_id):
        raise ApiError(
            400,
            "bad_request",
            f"Last-Event-ID {after} is past the last event of job {job_id} ({status.last_event_id})",
        )
    source = LogSource(job.client, job_id, job.entries, after)
    next_id = 0 if after is None else after + 1
    stream = JobStream(
        job.client, job_id, status.queue or "", job.settings, source=source, next_id=next_id, resumed=True
    )
    return sse_response(stream, {"X-Job-Id": job_id})


@router.delete("/{job_id}", status_code=202, summary="Stop a queued or running job")
async def cancel(job: SeenJob = Depends(seen_job)) -> JobStatus:
    """The worker stops at its next token and stores the partial reply as `cancelled`."""
    if job.status.state in ENDED:
        raise ApiError(409, "conflict", f"job {job.job_id} has already ended ({job.status.state})")
    queued = job.entries[0].queued
    await cancel_job(job.client, job.job_id, job.status.queue, queued.quota if queued else None)
    return job.status
