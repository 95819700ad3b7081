"""Replies the worker generated but could not store (MongoDB down or too slow): kept in Redis and
stored by a thread of every worker process once MongoDB answers again. Nothing generated is thrown
away; each store is idempotent by job id (a reply is written once, whoever writes it).
"""

import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Literal

import redis
from pymongo.errors import PyMongoError

from mongo.batches import save_item_result
from mongo.conversations import save_job_reply
from schemas.events import ErrorData
from schemas.jobs import ChatJob

log = logging.getLogger(__name__)

OUTBOX_KEY = "chatbot:replies:unstored"
FLUSH_EVERY_S = 2.0


@dataclass(frozen=True)
class Reply:
    """A finished job's reply and where it goes: a chat's conversation, or a batch item (with the
    error that ended it, if one did)."""

    store_in: Literal["chat", "batch_item"]
    job: ChatJob
    text: str
    status: str
    finish_reason: str
    usage: dict
    error: ErrorData | None = None

    def store(self) -> str | None:
        """The stored message's id; None when none is kept (a batch item, a stateless /v1 job)."""
        if self.store_in == "batch_item":
            error = self.error.model_dump() if self.error else None
            save_item_result(self.job, self.text, self.status, self.finish_reason, self.usage, error)
            return None
        return save_job_reply(self.job, self.text, self.status, self.finish_reason, self.usage)

    def to_json(self) -> str:
        entry = asdict(self) | {"job": self.job.model_dump(mode="json")}
        entry["error"] = self.error.model_dump() if self.error else None
        return json.dumps(entry)

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Reply":
        entry = json.loads(raw)
        entry["job"] = ChatJob.model_validate(entry["job"])
        entry["error"] = ErrorData.model_validate(entry["error"]) if entry.get("error") else None
        entry.setdefault("store_in", entry.pop("store", "chat"))
        return cls(**entry)


def put(client: redis.Redis, reply: Reply) -> None:
    client.hset(OUTBOX_KEY, reply.job.job_id, reply.to_json())
    log.warning("job %s: reply kept in the outbox until MongoDB answers", reply.job.job_id)


def flush(client: redis.Redis) -> int:
    """Store what the outbox holds; the number stored. Stops at the first MongoDB failure."""
    stored = 0
    for job_id, raw in client.hgetall(OUTBOX_KEY).items():
        reply = Reply.from_json(raw)
        try:
            reply.store()
        except PyMongoError as exc:
            log.info("outbox: MongoDB still unavailable (%s)", exc)
            break
        client.hdel(OUTBOX_KEY, job_id)
        stored += 1
        log.info("outbox: the reply of job %s is stored", reply.job.job_id)
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
