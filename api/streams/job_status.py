"""What `GET /jobs/{id}` says: a job's state, text so far and timings, summed up from its event log."""

from datetime import datetime

from jobs.log import LogEntry
from schemas.events import DoneData, ErrorData, StartedData, TokenData
from schemas.job_log import JobStatus, JobTimings


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def summarize(job_id: str, entries: list[LogEntry], queue_timeout_s: float, now: datetime) -> JobStatus:
    status = JobStatus(job_id=job_id, state="queued", timings=JobTimings())
    timings = status.timings
    pieces: list[str] = []
    for entry in entries:
        if status.state in ("done", "error", "cancelled"):
            break  # the first terminal event wins (the API may end a job its worker then ends too)
        if entry.queued:
            status.model, status.queue = entry.queued.model, entry.queued.queue
            status.detach = entry.queued.detach
            timings.queued_at = entry.at
            continue
        data = entry.event.data
        if isinstance(data, StartedData):  # again when a worker takes the job over: its reply goes on
            status.state, status.worker = "running", data.worker
            timings.started_at = timings.started_at or entry.at
            continue
        status.last_event_id = entry.event.id
        if isinstance(data, TokenData):
            pieces.append(data.text)
            timings.first_token_at = timings.first_token_at or entry.at
        elif isinstance(data, DoneData):
            status.state = "cancelled" if data.finish_reason == "cancelled" else "done"
            status.finish_reason, status.message_id = data.finish_reason, data.message_id
            status.usage = data.usage
            timings.finished_at = entry.at
        elif isinstance(data, ErrorData):
            status.state, status.error = "error", data
            timings.finished_at = entry.at
    status.text, status.tokens = "".join(pieces), len(pieces)
    waited = _seconds(timings.queued_at, now)
    if status.state == "queued" and waited is not None and waited > queue_timeout_s:
        status.state = "error"  # Celery dropped it unstarted (the task expired)
        message = f"no worker started the job within {queue_timeout_s:.0f}s"
        status.error = ErrorData(code="queue_timeout", message=message)
    timings.queue_wait_s = _seconds(timings.queued_at, timings.started_at)
    timings.time_to_first_token_s = _seconds(timings.started_at, timings.first_token_at)
    timings.generation_s = _seconds(timings.started_at, timings.finished_at)
    return status
