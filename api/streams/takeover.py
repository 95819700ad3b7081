"""Takeover: a job whose worker is gone (lost, or silent too long) goes back to its queue, ahead of
any new chat, and the next worker that takes it continues its reply from the tokens its log holds
(workers/chat_job.py); the client's stream stays open meanwhile (api/streams/relay.py).

The job's state moves from `running` to `queued` only if it is still the lost attempt's
(jobs/transitions.py `requeue`), so one stream, however many watch the job, sends it once; the
message the lost worker still holds unacknowledged is dropped, so kombu never gives it back later.
"""

import asyncio
import logging
import time

import redis.asyncio as aioredis
from celery import Celery

from api.streams.enqueue import enqueue_chat
from api.streams.worker_status import process_alive
from jobs.broker import drop_held, held_since, held_task_ids, is_queued
from jobs.transitions import ended, never_started, requeue, running_jobs
from model_registry import ModelSpec, get_registry
from schemas.jobs import ChatJob
from settings import Settings

log = logging.getLogger(__name__)

# A worker starts a job it has received, or gives it back to its queue, within about a second
# (workers/slot_gate.py; a batch item's claim may retry for ~15 s): a message held this long by a
# worker that has not started its job was received by a worker that has died since.
UNSTARTED_HELD_S = 60.0


def _send_again(app: Celery, job: ChatJob, spec: ModelSpec, expires_s: float) -> None:
    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        drop_held(broker, job.job_id)
        if is_queued(broker, spec.queue, job.job_id):  # Celery gave it back itself (a pool process died)
            return
    enqueue_chat(app, job, spec, expires_s, takeover=True)


async def take_over(
    app: Celery, client: aioredis.Redis, job: ChatJob, spec: ModelSpec, attempt: int, expires_s: float
) -> bool:
    """Send the job of the lost `attempt` to another worker; False when the job has moved on (ended,
    or taken again) and there is nothing to send."""
    if not await requeue(client, job.job_id, attempt):
        return False
    await asyncio.to_thread(_send_again, app, job, spec, expires_s)
    return True


async def take_over_orphans(app: Celery, client: aioredis.Redis, settings: Settings) -> int:
    """The running chats whose worker process is gone and that no stream has taken over (a detached
    job with no client, a client that went away): taken over here. How many were."""
    registry = get_registry()
    sent = 0
    for running in await running_jobs(client):
        if running.job is None:  # a batch item: batch recovery's
            continue
        job = ChatJob.model_validate_json(running.job)
        spec = registry.get(job.model)
        lost_after_s = settings.worker_lost_after_s
        if spec is None or await process_alive(client, spec.queue, running.process, lost_after_s):
            continue
        if await take_over(app, client, job, spec, running.attempt, settings.queue_timeout_s):
            log.warning(
                "job %s: its worker %s was lost; taken over by the recovery sweep",
                job.job_id,
                running.process,
            )
            sent += 1
    return sent


async def forget_ended_messages(app: Celery, client: aioredis.Redis) -> None:
    """Messages held unacknowledged by lost workers for jobs that have ended since (their stream
    ended them): dropped, so kombu never gives them back after its visibility timeout."""
    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        held = await asyncio.to_thread(held_task_ids, broker)
        for job_id in await ended(client, held):
            await asyncio.to_thread(drop_held, broker, job_id)


async def give_back_unstarted(app: Celery, client: aioredis.Redis) -> int:
    """Messages held unacknowledged for UNSTARTED_HELD_S by workers that never started their jobs
    (they died while the job waited for room): put back at the head of their queue, as kombu would
    only after its visibility timeout (hours). How many were."""
    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        held = await asyncio.to_thread(held_since, broker, time.time() - UNSTARTED_HELD_S)
        unstarted = await never_started(client, list(held))
        for job_id in unstarted:
            log.warning("job %s: its worker died before starting it; back to its queue", job_id)
            await asyncio.to_thread(
                connection.default_channel.qos.restore_by_tag, held[job_id], leftmost=False
            )
        return len(unstarted)
