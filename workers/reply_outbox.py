"""Replies the worker generated but could not store (MongoDB down or too slow): kept in Redis and
stored by a thread of every worker process once MongoDB answers again. Nothing generated is thrown
away; each store is idempotent by job id (a reply is written once, whoever writes it).
"""

import json
import logging
import threading
from collections.abc import Callable

import redis
from pymongo.errors import PyMongoError

from mongo.batches import save_item_result
from mongo.conversations import save_job_reply
from schemas.jobs import ChatJob

log = logging.getLogger(__name__)

OUTBOX_KEY = "chatbot:replies:unstored"
FLUSH_EVERY_S = 2.0

# (job, content, status, finish_reason, usage) -> the stored message's id, or None when none is kept.
StoreReply = Callable[[ChatJob, str, str, str, dict], str | None]

# Where a reply goes, by name (the outbox keeps the name, not the function).
STORES: dict[str, StoreReply] = {"chat": save_job_reply, "batch_item": save_item_result}


def put(
    client: redis.Redis, store: str, job: ChatJob, text: str, status: str, finish_reason: str, usage: dict
):
    entry = {"store": store, "job": job.model_dump(mode="json"), "text": text, "status": status,
             "finish_reason": finish_reason, "usage": usage}  # fmt: skip
    client.hset(OUTBOX_KEY, job.job_id, json.dumps(entry))
    log.warning("job %s: reply kept in the outbox until MongoDB answers", job.job_id)


def flush(client: redis.Redis) -> int:
    """Store what the outbox holds; the number stored. Stops at the first MongoDB failure."""
    stored = 0
    for job_id, raw in client.hgetall(OUTBOX_KEY).items():
        entry = json.loads(raw)
        job = ChatJob.model_validate(entry["job"])
        try:
            STORES[entry["store"]](
                job, entry["text"], entry["status"], entry["finish_reason"], entry["usage"]
            )
        except PyMongoError as exc:
            log.info("outbox: MongoDB still unavailable (%s)", exc)
            break
        client.hdel(OUTBOX_KEY, job_id)
        stored += 1
        log.info("outbox: the reply of job %s is stored", job.job_id)
    return stored


class OutboxFlusher:
    """A daemon thread of the worker process that flushes the outbox every few seconds."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reply-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            try:
                flush(self._client)
            except redis.RedisError as exc:
                log.warning("outbox: Redis unavailable (%s)", exc)
