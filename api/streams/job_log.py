"""Resuming a job's stream from its event log (jobs/log.py): replay the log after the client's last
event id, then follow it with XREAD BLOCK from the last entry it read. Pub/sub would leave a gap
(events published between the replay and the subscribe) or a duplicate; one cursor over one stream
has neither.
"""

import redis.asyncio as aioredis

from jobs.log import LogEntry, follow_log
from schemas.events import JobEvent

READ_BATCH = 256


class LogSource:
    """A stream source (api.streams.relay.EventSource) over the log: the events after `after_id` (all when
    None; `started` always, so the relay knows the job left the queue), then the live rest."""

    def __init__(
        self, client: aioredis.Redis, job_id: str, entries: list[LogEntry], after_id: int | None
    ) -> None:
        self._client = client
        self._job_id = job_id
        self._backlog = [
            entry.event
            for entry in entries
            if entry.event and (after_id is None or entry.event.id > after_id or entry.event.id < 0)
        ]
        self._cursor = entries[-1].entry_id if entries else "0-0"

    async def open(self) -> None:
        """Nothing to open: the log was read when the source was made."""

    async def receive(self, timeout_s: float) -> list[JobEvent]:  # pragma: no mutate block
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            return backlog
        entries = await follow_log(
            self._client, self._job_id, self._cursor, READ_BATCH, int(timeout_s * 1000)
        )
        if entries:
            self._cursor = entries[-1].entry_id
        return [entry.event for entry in entries if entry.event]

    async def aclose(self) -> None:
        """Nothing held between reads."""
