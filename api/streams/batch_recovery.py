"""Batch items whose queue message was lost are enqueued again, so a batch never waits forever.

A message can be lost when Redis restarts (its append-only file is fsync'ed every second) or be held
by a worker that was killed with it unacked (kombu gives it back only after its visibility timeout,
an hour). Every SWEEP_EVERY_S the API looks at the unfinished items of the batches not cancelled:

* a pending item whose job is in no queue list and in no worker's unacked messages is lost;
* a running item whose job has not ended and whose worker process is gone (its heartbeat lapsed) is
  lost too, its unacked message given back to its queue if it is still held.

An item is acted on only when two sweeps in a row found it lost (a message moves between a queue and
the unacked set in a moment that a sweep could catch). Running an item again is safe: a worker
claims an item before running it and never runs a finished one (mongo/batches.py).
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict

import redis
from celery import Celery

from api.streams.enqueue import enqueue_batch_items
from model_registry import get_registry
from mongo.batches import Batch, BatchItem
from schemas.events import JobEvent
from schemas.job_log import EVENT_FIELD
from schemas.jobs import ChatJob
from schemas.redis_keys import job_log_key, queue_keys, workers_key
from settings import Settings

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 15.0
UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, routing key]


def _task_id(payload: dict) -> str | None:
    """The task id of a kombu message as the Redis transport stores it (JSON, headers.id)."""
    with contextlib.suppress(KeyError, TypeError):
        return payload["headers"]["id"]
    return None


def _unfinished_items() -> list[BatchItem]:
    items = list(
        BatchItem.objects(state__in=("pending", "running")).only("job_id", "batch_id", "state", "job")
    )
    live = set(Batch.objects(id__in={item.batch_id for item in items}, cancelled_at=None).scalar("id"))
    return [item for item in items if item.batch_id in live]


def _worker_gone(client: redis.Redis, job_id: str, queue: str, lost_after_s: float) -> bool:
    """The job has started and not ended, and the worker process of its last start is gone."""
    process = None
    for _entry_id, fields in client.xrange(job_log_key(job_id)):
        raw = fields.get(EVENT_FIELD.encode())
        if raw is None:
            continue
        event = JobEvent.model_validate_json(raw)
        if event.is_final:
            return False
        if event.event == "started":
            process = event.data.process
    if process is None:
        return False
    beat = client.zscore(workers_key(queue), process)
    return beat is None or time.time() - beat > lost_after_s


def lost_items(app: Celery, settings: Settings) -> dict[str, tuple[BatchItem, str | None]]:
    """Items lost now, by job id, with the delivery tag of the message a dead worker still holds."""
    items = _unfinished_items()
    if not items:
        return {}
    registry = get_registry()
    with app.connection_for_write() as connection:
        client: redis.Redis = connection.default_channel.client
        queued: set[str] = set()
        for queue in {spec.queue for spec in registry.values()}:
            for key in queue_keys(queue):
                queued.update(_task_id(json.loads(raw)) for raw in client.lrange(key, 0, -1))
        held = {}
        for tag, raw in client.hgetall(UNACKED_KEY).items():
            message, _exchange, _routing_key = json.loads(raw)
            held[_task_id(message)] = tag
        lost = {}
        for item in items:
            if item.job_id in queued:
                continue
            queue = registry[item.job["model"]].queue
            if item.state == "running" and _worker_gone(
                client, item.job_id, queue, settings.worker_lost_after_s
            ):
                lost[item.job_id] = (item, held.get(item.job_id))
            elif item.state == "pending" and item.job_id not in held:
                lost[item.job_id] = (item, None)
        return lost


def recover(app: Celery, settings: Settings, suspects: set[str]) -> set[str]:
    """Enqueue again the items lost now and at the last sweep (`suspects`); those lost now."""
    lost = lost_items(app, settings)
    again = [lost[job_id] for job_id in lost.keys() & suspects]
    if again:
        registry = get_registry()
        by_batch: dict[str, list[ChatJob]] = defaultdict(list)
        with app.connection_for_write() as connection:
            for item, tag in again:
                if tag is not None:  # its dead worker's message goes back to the queue
                    connection.default_channel.qos.restore_by_tag(tag, leftmost=True)
                else:
                    by_batch[str(item.batch_id)].append(ChatJob.model_validate(item.job))
        for batch_id, jobs in by_batch.items():
            enqueue_batch_items(app, batch_id, jobs, {job.model: registry[job.model] for job in jobs})
        log.warning("enqueued again %d batch item(s) whose message was lost", len(again))
    return set(lost) - {item.job_id for item, _ in again}


async def recover_forever(app: Celery, settings: Settings) -> None:
    suspects: set[str] = set()
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            suspects = await asyncio.to_thread(recover, app, settings, suspects)
        except Exception:  # Redis or MongoDB down: the next sweep tries again
            log.warning("batch recovery sweep failed", exc_info=True)
