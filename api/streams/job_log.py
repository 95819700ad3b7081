"""A job's event log in Redis (see schemas/job_log.py): opened here, read to report and to resume.

Resuming replays the log after the client's last event id, then follows it with XREAD BLOCK from the
last entry it read. Pub/sub would leave a gap (events published between the replay and the
subscribe) or a duplicate; one cursor over one stream has neither.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from schemas.events import JobEvent
from schemas.job_log import EVENT_FIELD, QUEUED_FIELD, QueuedRecord
from schemas.redis_keys import job_log_key
from settings import Settings

READ_BATCH = 256


@dataclass(frozen=True)
class LogEntry:
    entry_id: str
    at: datetime  # when Redis stored it: the entry id's milliseconds
    queued: QueuedRecord | None = None
    event: JobEvent | None = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_entry(entry_id: bytes | str, fields: dict) -> LogEntry:
    entry_id = _text(entry_id)
    at = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)
    fields = {_text(key): _text(value) for key, value in fields.items()}
    if QUEUED_FIELD in fields:
        return LogEntry(entry_id, at, queued=QueuedRecord.model_validate_json(fields[QUEUED_FIELD]))
    return LogEntry(entry_id, at, event=JobEvent.model_validate_json(fields[EVENT_FIELD]))


async def open_job_log(client: aioredis.Redis, job_id: str, record: QueuedRecord, settings: Settings) -> None:
    """Start the log before the job is enqueued; it outlives the longest wait in the queue."""
    key = job_log_key(job_id)
    pipe = client.pipeline(transaction=False)
    pipe.xadd(key, {QUEUED_FIELD: record.model_dump_json()})
    pipe.expire(key, settings.job_log_ttl_s + int(settings.queue_timeout_s))
    await pipe.execute()


async def read_job_log(client: aioredis.Redis, job_id: str) -> list[LogEntry]:
    return [parse_entry(entry_id, fields) for entry_id, fields in await client.xrange(job_log_key(job_id))]


class LogSource:
    """A stream source (api.streams.relay.EventSource) over the log: the events after `after_id` (all when
    None; `started` always, so the relay knows the job left the queue), then the live rest."""

    def __init__(
        self, client: aioredis.Redis, job_id: str, entries: list[LogEntry], after_id: int | None
    ) -> None:
        self._client = client
        self._key = job_log_key(job_id)
        self._backlog = [
            entry.event
            for entry in entries
            if entry.event and (after_id is None or entry.event.id > after_id or entry.event.id < 0)
        ]
        self._cursor = entries[-1].entry_id if entries else "0-0"

    async def open(self) -> None:
        """Nothing to open: the log was read when the source was made."""

    async def receive(self, timeout_s: float) -> list[JobEvent]:
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            return backlog
        reply = await self._client.xread(
            {self._key: self._cursor}, count=READ_BATCH, block=int(timeout_s * 1000)
        )
        events = []
        for _key, items in reply or []:
            for entry_id, fields in items:
                entry = parse_entry(entry_id, fields)
                self._cursor = entry.entry_id
                if entry.event:
                    events.append(entry.event)
        return events

    async def aclose(self) -> None:
        """Nothing held between reads."""
