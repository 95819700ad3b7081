"""Batch items whose queue message was lost are enqueued again, so a batch never waits forever.

A message can be lost when Redis restarts (its append-only file is fsync'ed every second) or be held
by a worker that was killed with it unacked (kombu gives it back only after its visibility timeout,
an hour). Every SWEEP_EVERY_S one API process (the holder of SWEEP_LOCK_KEY, which lapses when it
stops) looks at the unfinished items of the batches not cancelled:

* a pending item whose job is in no queue list and in no worker's unacked messages is lost;
* a running item whose job has not ended and whose worker process is gone (its heartbeat lapsed) is
  lost too, its unacked message given back to its queue if it is still held.

A pending item is acted on only when two sweeps in a row found it lost (a message moves between a
queue and the unacked set in a moment that a sweep could catch); a running one whose worker is gone
at once: it is marked pending again, so the batch never counts more running items than there are
slots for long, and its message goes back to the head of its queue: the next worker takes its reply
over where its log ends. A submission's chunk that its API did not
expand within STALE_CHUNK_S (it stopped meanwhile) is expanded here (api/streams/batch_expansion.py).
When every live batch's unfinished items (by the counts kept on it) have as many messages queued
or held by live workers, nothing can be lost and the items are not read at all; otherwise the sweep
reads only their ids, batch, state and model, and a lost item's job only to enqueue it again.
Running an item again is safe: a worker claims an item before running it and never runs a finished
one (mongo/batches.py). Kombu's message layout is read in jobs/broker.py, the documents in mongo/.
"""

import asyncio
import logging
import os
import time
from collections import Counter, defaultdict

import redis
import redis.asyncio as aioredis
from celery import Celery

from api.streams.batch_expansion import expand_chunks
from api.streams.enqueue import enqueue_batch_items
from api.streams.takeover import forget_ended_messages, give_back_unstarted, take_over_orphans
from jobs.broker import Held, Queued, messages
from jobs.keys import PREFIX, workers_key
from jobs.log import read_log, running_process
from model_registry import get_registry
from mongo.batches import (
    BatchItem,
    item_jobs,
    live_batch_counts,
    stale_chunks,
    unclaim_item,
    unexpanded,
    unfinished_items,
)
from schemas.jobs import ChatJob
from settings import Settings

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 15.0
STALE_CHUNK_S = 60.0
# One API process sweeps at a time: the one holding this lock (it lapses if that process dies).
SWEEP_LOCK_KEY = f"{PREFIX}:batch-recovery:sweeper"


def _worker_gone(client: redis.Redis, job_id: str, queue: str, lost_after_s: float) -> bool:
    """The job has started and not ended, and the worker process of its last start is gone."""
    process = running_process(read_log(client, job_id))
    if process is None:
        return False
    beat = client.zscore(workers_key(queue), process)
    return beat is None or time.time() - beat > lost_after_s


def _all_accounted(client: redis.Redis, queued: Queued, held: Held, settings: Settings) -> bool:
    """Every unfinished item of every live batch has a message, queued or held by a live worker,
    going by the batches' counts: then the items need not be read (thousands, on every sweep)."""
    messages = Counter(queued.values()) + Counter(batch for _tag, _queue, batch in held.values())
    waiting = unexpanded()  # items not stored yet have no message yet
    for batch_id, counts in live_batch_counts().items():
        if counts["pending"] + counts["running"] - waiting[batch_id] > messages[str(batch_id)]:
            return False
    return not any(
        _worker_gone(client, job_id, queue, settings.worker_lost_after_s)
        for job_id, (_tag, queue, batch) in held.items()
        if batch is not None
    )


def lost_items(app: Celery, settings: Settings) -> dict[str, tuple[BatchItem, str | None]]:
    """Items lost now, by job id, with the delivery tag of the message a dead worker still holds."""
    registry = get_registry()
    with app.connection_for_write() as connection:
        client: redis.Redis = connection.default_channel.client
        queued, held = messages(client, {spec.queue for spec in registry.values()})
        if _all_accounted(client, queued, held, settings):
            return {}
        lost = {}
        for item in unfinished_items():
            if item.job_id in queued:
                continue
            queue = registry[item.job["model"]].queue
            if item.state == "running" and _worker_gone(
                client, item.job_id, queue, settings.worker_lost_after_s
            ):
                lost[item.job_id] = (item, held[item.job_id][0] if item.job_id in held else None)
            elif item.state == "pending" and item.job_id not in held:
                lost[item.job_id] = (item, None)
        return lost


def recover(app: Celery, settings: Settings, suspects: set[str]) -> set[str]:
    """Enqueue again the items lost now and at the last sweep (`suspects`), and at once those whose
    worker process is gone (nothing moves them meanwhile); the others lost now."""
    lost = lost_items(app, settings)
    again = [item for job_id, item in lost.items() if job_id in suspects or item[0].state == "running"]
    if again:
        registry = get_registry()
        by_batch: dict[str, list[ChatJob]] = defaultdict(list)
        jobs = item_jobs([item.job_id for item, tag in again if tag is None])
        with app.connection_for_write() as connection:
            for item, tag in again:
                if item.state == "running":  # not running now: the batch's counts say so
                    unclaim_item(item.job_id)
                if tag is not None:  # its dead worker's message goes back to the queue: a reply
                    # begun (taken over where its log ends) at the head, a pending one at the back
                    connection.default_channel.qos.restore_by_tag(tag, leftmost=item.state != "running")
                elif item.job_id in jobs:
                    by_batch[str(item.batch_id)].append(jobs[item.job_id])
        for batch_id, jobs in by_batch.items():
            enqueue_batch_items(app, batch_id, jobs, {job.model: registry[job.model] for job in jobs})
        log.warning("enqueued again %d batch item(s) whose message was lost", len(again))
    return set(lost) - {item.job_id for item, _ in again}


def sweep(app: Celery, settings: Settings, suspects: set[str]) -> set[str]:
    expand_chunks(app, stale_chunks(STALE_CHUNK_S))
    return recover(app, settings, suspects)


def _sweeper(app: Celery) -> bool:
    """Whether this process holds (or now takes) the sweeper's lock, for the next two sweeps."""
    me = f"{os.getpid()}@{os.uname().nodename}"
    with app.connection_for_write() as connection:
        client: redis.Redis = connection.default_channel.client
        ttl_ms = int(SWEEP_EVERY_S * 2 * 1000)
        if client.set(SWEEP_LOCK_KEY, me, nx=True, px=ttl_ms):
            return True
        holder = client.get(SWEEP_LOCK_KEY)
        if holder is not None and holder.decode() == me:
            client.pexpire(SWEEP_LOCK_KEY, ttl_ms)
            return True
        return False


async def recover_forever(app: Celery, client: aioredis.Redis, settings: Settings) -> None:
    """The recovery sweep, in the one API process holding the sweeper's lock: lost batch items,
    chats whose worker is gone and no stream took over, messages of ended jobs still held, and
    messages a dead worker held without starting their jobs."""
    suspects: set[str] = set()
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            if not await asyncio.to_thread(_sweeper, app):
                suspects = set()  # another API process sweeps
                continue
            suspects = await asyncio.to_thread(sweep, app, settings, suspects)
            await take_over_orphans(app, client, settings)
            await forget_ended_messages(app, client)
            await give_back_unstarted(app, client)
        except Exception:  # Redis or MongoDB down: the next sweep tries again
            log.warning("batch recovery sweep failed", exc_info=True)
