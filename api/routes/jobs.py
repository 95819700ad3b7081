"""A job after its request: its state (`GET /jobs/{id}`), its events again from any point
(`GET /jobs/{id}/events` with Last-Event-ID), and a cancel for a job no stream is holding."""

from datetime import UTC, datetime
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, Path, Query
from sse_starlette import EventSourceResponse

from api.http.dependencies import redis_dep, settings_dep
from api.http.errors import ApiError
from api.streams.job_log import LogEntry, LogSource, read_job_log
from api.streams.job_status import summarize
from api.streams.relay import JobStream, cancel_job, sse_response
from schemas.job_log import JobStatus
from settings import Settings

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the X-Job-Id of the chat response")
]


async def _job_log(client: aioredis.Redis, job_id: str) -> list[LogEntry]:
    entries = await read_job_log(client, job_id)
    if not entries:
        raise ApiError(404, "not_found", f"job {job_id!r} not found (unknown, or its log has expired)")
    return entries


def _status(job_id: str, entries: list[LogEntry], settings: Settings) -> JobStatus:
    return summarize(job_id, entries, settings.queue_timeout_s, datetime.now(UTC))


@router.get("/{job_id}", summary="A job's state, text so far and timings")
async def job_status(
    job_id: JobId,
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> JobStatus:
    return _status(job_id, await _job_log(client, job_id), settings)


@router.get(
    "/{job_id}/events",
    summary="A job's events as SSE: those after Last-Event-ID, then the live rest",
    response_class=EventSourceResponse,
)
async def job_events(
    job_id: JobId,
    last_event_id_header: int | None = Header(default=None, alias="Last-Event-ID", ge=0),
    last_event_id: int | None = Query(default=None, ge=0, description="instead of the Last-Event-ID header"),
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> EventSourceResponse:
    """Reading this stream never cancels the job: only the request that started it can (or DELETE)."""
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    entries = await _job_log(client, job_id)
    status = _status(job_id, entries, settings)
    if after is not None and (status.last_event_id is None or after > status.last_event_id):
        raise ApiError(
            400,
            "bad_request",
            f"Last-Event-ID {after} is past the last event of job {job_id} ({status.last_event_id})",
        )
    source = LogSource(client, job_id, entries, after)
    next_id = 0 if after is None else after + 1
    stream = JobStream(
        client, job_id, status.queue or "", settings, source=source, detach=True, next_id=next_id
    )
    return sse_response(stream, {"X-Job-Id": job_id})


@router.delete("/{job_id}", status_code=202, summary="Stop a queued or running job")
async def cancel(
    job_id: JobId,
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> JobStatus:
    """The worker stops at its next token and stores the partial reply as `cancelled`."""
    status = _status(job_id, await _job_log(client, job_id), settings)
    if status.state not in ("queued", "running"):
        raise ApiError(409, "conflict", f"job {job_id} has already ended ({status.state})")
    await cancel_job(client, job_id)
    return status
