"""A job's event log: the short-lived Redis stream that makes streams resumable and jobs inspectable.

The API opens it with a `queued` record when it enqueues the job (jobs/transitions.py); every event
of the job is appended in the same script that publishes it, so any event a client has seen is in
the log when it resumes. Entry ids are Redis's own (server time), so the timings of `GET /jobs/{id}`
come from one clock whichever host wrote the entry. This module is the one place a log entry is
parsed.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import redis.asyncio as aioredis

from jobs.keys import job_log_key
from schemas.events import JobEvent
from schemas.job_log import QueuedRecord

# The field of a log entry: a job event (schemas.events.JobEvent) or the API's queued record; a token
# event also keeps the reply token ids its text completes (comma-separated), for a takeover.
EVENT_FIELD = "event"
QUEUED_FIELD = "queued"
IDS_FIELD = "ids"

# A safety cap on entries per log (XADD MAXLEN ~): well above the longest reply (max_tokens 4096).
LOG_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class LogEntry:
    entry_id: str
    at: datetime  # when Redis stored it: the entry id's milliseconds
    queued: QueuedRecord | None = None
    event: JobEvent | None = None
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReplySoFar:
    """What a job's log holds of its reply: where a worker taking it over continues from."""

    text: str
    token_ids: list[int]
    tokens: int  # token events so far: the next one's index


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_entry(entry_id: bytes | str, fields: dict) -> LogEntry:
    entry_id = _text(entry_id)
    at = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)
    fields = {_text(key): _text(value) for key, value in fields.items()}
    if QUEUED_FIELD in fields:
        return LogEntry(entry_id, at, queued=QueuedRecord.model_validate_json(fields[QUEUED_FIELD]))
    ids = tuple(int(token) for token in fields.get(IDS_FIELD, "").split(",") if token)
    return LogEntry(entry_id, at, event=JobEvent.model_validate_json(fields[EVENT_FIELD]), token_ids=ids)


def parse_entries(raw: list) -> list[LogEntry]:
    """XRANGE's (or one XREAD stream's) reply as entries, oldest first."""
    return [parse_entry(entry_id, fields) for entry_id, fields in raw]


def events(entries: list[LogEntry]) -> list[JobEvent]:
    return [entry.event for entry in entries if entry.event is not None]


def reply_so_far(entries: list[LogEntry]) -> ReplySoFar:
    """The reply the job's attempts have streamed, whole: each takeover continues it."""
    pieces: list[str] = []
    token_ids: list[int] = []
    for entry in entries:
        if entry.event is not None and entry.event.event == "token":
            pieces.append(entry.event.data.text)
            token_ids.extend(entry.token_ids)
    return ReplySoFar("".join(pieces), token_ids, len(pieces))


def running_process(entries: list[LogEntry]) -> str | None:
    """The worker process (heartbeat member) of the job's last start, while it has not ended."""
    process = None
    for event in events(entries):
        if event.is_final:
            return None
        if event.event == "started":
            process = event.data.process
    return process


# The Redis I/O is left out of the mutation run (`make mutation`): tests/test_resume.py covers it against
# the real Redis; what is read from the entries is mutated.
# pragma: no mutate start
def read_log(client: redis.Redis, job_id: str) -> list[LogEntry]:
    return parse_entries(client.xrange(job_log_key(job_id)))


async def read_log_async(client: aioredis.Redis, job_id: str) -> list[LogEntry]:
    return parse_entries(await client.xrange(job_log_key(job_id)))


async def follow_log(
    client: aioredis.Redis, job_id: str, cursor: str, count: int, block_ms: int
) -> list[LogEntry]:
    """The entries after `cursor` (an entry id), waiting up to block_ms for the first."""
    reply = await client.xread({job_log_key(job_id): cursor}, count=count, block=block_ms)
    return [entry for _key, items in reply or [] for entry in parse_entries(items)]


# pragma: no mutate end
