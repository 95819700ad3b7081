"""A job's event log: the short-lived Redis stream that makes streams resumable and jobs inspectable.

The API opens the log with a `queued` record when it enqueues the job; the worker appends every event
it publishes (the same JSON as on the pub/sub channel). Entry ids are Redis's own (server time), so
the timings of `GET /jobs/{id}` come from one clock whichever host wrote the entry.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.events import ErrorData, Usage

# The one field of a log entry: a worker event (schemas.events.JobEvent) or the API's queued record.
EVENT_FIELD = "event"
QUEUED_FIELD = "queued"

# A safety cap on entries per log (XADD MAXLEN ~): well above the longest reply (max_tokens 4096).
LOG_MAX_ENTRIES = 10_000

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
