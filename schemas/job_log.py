"""What `GET /jobs/{id}` answers, and the API's `queued` record that opens a job's log (jobs/log.py)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.events import ErrorData, Usage

JobState = Literal["queued", "running", "done", "error", "cancelled"]


class QueuedRecord(BaseModel):
    """What the API knew when it enqueued the job."""

    model: str
    queue: str
    detach: bool = False
    owner: str = ""  # the user whose key started it: only they (and admins) read, follow or cancel it
    quota: str = ""  # that key's prefix: its quotas count the job until it ends


class JobTimings(BaseModel):
    queued_at: datetime | None = None
    started_at: datetime | None = None
    first_token_at: datetime | None = None
    finished_at: datetime | None = None
    queue_wait_s: float | None = None
    time_to_first_token_s: float | None = None
    generation_s: float | None = None


class JobStatus(BaseModel):
    """`GET /jobs/{id}`: where a job is, what it has said so far, and how long each step took."""

    job_id: str
    state: JobState
    model: str | None = None
    queue: str | None = None
    detach: bool = False
    worker: str | None = None
    text: str = ""
    tokens: int = 0
    last_event_id: int | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    message_id: str | None = None
    error: ErrorData | None = None
    timings: JobTimings
