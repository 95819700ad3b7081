"""One batch item on a worker: the chat job's own generation path, its result kept on the item.

The item is claimed first, so one whose batch was cancelled while it waited is skipped at once. The
claim is retried while MongoDB does not answer (a loaded server times out now and then): it is
idempotent, and a claim whose answer was lost would otherwise leave the item `running` for good.
Its events are published like any job's (and its cancel flag checked at each token), but nobody
may be listening: its result and any failure are kept on the item (workers/reply_outbox.py).
"""

import logging
import time

import redis
from pymongo.errors import PyMongoError

from mongo.batches import claim_item
from schemas.jobs import ChatJob
from workers.chat_job import run_chat_job
from workers.job_handle import JobHandle
from workers.slot_gate import batch_share

log = logging.getLogger(__name__)

# Waits between tries of a claim while MongoDB fails; then the error is the task's.
CLAIM_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def _claimed(batch_id: str, job_id: str, worker: str) -> bool:
    for wait_s in CLAIM_BACKOFF_S:
        try:
            return claim_item(batch_id, job_id, worker)
        except PyMongoError as exc:
            log.warning("batch item %s: claim failed (%s); trying again in %.1fs", job_id, exc, wait_s)
            time.sleep(wait_s)
    return claim_item(batch_id, job_id, worker)


def run_batch_item(
    batch_id: str, job: ChatJob, client: redis.Redis, worker: str, log_ttl_s: int, max_attempts: int
) -> str | None:
    """The item's finish reason; None when it was skipped."""
    if not _claimed(batch_id, job.job_id, worker):
        log.info("batch item %s skipped: cancelled or already finished", job.job_id)
        return None
    handle = JobHandle(client, job.job_id, log_ttl_s)
    return run_chat_job(job, handle, "batch_item", worker, max_attempts, batch_share(batch_id))
