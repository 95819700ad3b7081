"""One Redis pub/sub connection per API process carries the events of every job.

It pattern-subscribes to all job channels once, at start, and hands each message to the stream
that registered its job. A stream registers before its job is enqueued, so no event is lost, and
no per-stream subscribe round trip or connection is spent: a thousand open streams cost one
connection, not a thousand. (Each API replica sees every job's events and drops the others'.)
"""

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from schemas.events import JobEvent
from schemas.redis_keys import ALL_JOB_CHANNELS, job_channel

log = logging.getLogger(__name__)

RECONNECT_S = 1.0


class EventHub:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queues: dict[bytes, asyncio.Queue[bytes]] = {}
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, job_id: str) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues[job_channel(job_id).encode()] = queue
        return queue

    def unregister(self, job_id: str) -> None:
        self._queues.pop(job_channel(job_id).encode(), None)

    async def _run(self) -> None:
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(ALL_JOB_CHANNELS)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message["type"] == "pmessage" and (queue := self._queues.get(message["channel"])):
                        queue.put_nowait(message["data"])
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("event hub lost Redis (%s); resubscribing in %.0fs", exc, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
            finally:
                await pubsub.aclose()


class HubSource:
    """A stream source (api.streams.relay.EventSource) fed by the hub: the job's live events only, so it must
    be opened before the job is enqueued."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self._hub = hub
        self._job_id = job_id
        self._messages: asyncio.Queue[bytes] | None = None

    async def open(self) -> None:
        self._messages = self._hub.register(self._job_id)

    async def receive(self, timeout_s: float) -> list[JobEvent]:
        """All the events already here (the common case under load: no timer), else the next one."""
        if self._messages.empty():
            try:
                return [JobEvent.model_validate_json(await asyncio.wait_for(self._messages.get(), timeout_s))]
            except TimeoutError:
                return []
        batch = []
        while not self._messages.empty():
            batch.append(JobEvent.model_validate_json(self._messages.get_nowait()))
        return batch

    async def aclose(self) -> None:
        self._hub.unregister(self._job_id)
