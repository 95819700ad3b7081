"""What Celery's Redis transport (kombu) holds of the jobs: the messages waiting in the queue lists and
those a worker has taken and not yet acknowledged (kombu's `unacked` hash), read for batch recovery,
and a held message given back to its queue. Kombu's layout is read here and nowhere else."""

import base64
import contextlib
import json

import redis

from jobs.keys import queue_keys
from schemas.jobs import BATCH_ITEM_TASK

UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, routing key]
UNACKED_INDEX_KEY = "unacked_index"  # delivery tag -> when it was delivered (its visibility timeout)

# task id -> batch id (None for a task that is no batch item)
Queued = dict[str | None, str | None]
# task id -> (delivery tag, queue, batch id)
Held = dict[str | None, tuple[bytes, str, str | None]]


def _task_id(payload: dict) -> str | None:
    """The task id of a kombu message as the Redis transport stores it (JSON, headers.id)."""
    with contextlib.suppress(KeyError, TypeError):
        return payload["headers"]["id"]
    return None


def _batch_of(message: dict) -> str | None:
    """The batch id of a batch item's kombu message (its first argument); None for another task."""
    if message.get("headers", {}).get("task") != BATCH_ITEM_TASK:
        return None
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
        return json.loads(base64.b64decode(message["body"]))[0][0]
    return None


def messages(client: redis.Redis, queues: set[str]) -> tuple[Queued, Held]:
    """The messages waiting in these queues, and those held by workers (any queue)."""
    queued: Queued = {}
    for queue in queues:
        for key in queue_keys(queue):
            for raw in client.lrange(key, 0, -1):
                message = json.loads(raw)
                queued[_task_id(message)] = _batch_of(message)
    held: Held = {}
    for tag, raw in client.hgetall(UNACKED_KEY).items():
        message, _exchange, routing_key = json.loads(raw)
        held[_task_id(message)] = (tag, routing_key, _batch_of(message))
    return queued, held


def is_queued(client: redis.Redis, queue: str, task_id: str) -> bool:
    """Whether a message of the task waits in the queue (Celery gave it back: its pool process died)."""
    return any(
        _task_id(json.loads(raw)) == task_id for key in queue_keys(queue) for raw in client.lrange(key, 0, -1)
    )


def held_task_ids(client: redis.Redis) -> list[str]:
    """The task (job) ids of every message a worker holds unacknowledged."""
    return [
        task_id
        for raw in client.hgetall(UNACKED_KEY).values()
        if (task_id := _task_id(json.loads(raw)[0])) is not None
    ]


def drop_held(client: redis.Redis, task_id: str) -> bool:
    """Forget the message of `task_id` a worker holds unacknowledged (its worker is gone and the job
    is sent again), so kombu never gives it back later; whether one was held."""
    for tag, raw in client.hgetall(UNACKED_KEY).items():
        if _task_id(json.loads(raw)[0]) == task_id:
            pipe = client.pipeline()
            pipe.hdel(UNACKED_KEY, tag)
            pipe.zrem(UNACKED_INDEX_KEY, tag)
            pipe.execute()
            return True
    return False


def held_since(client: redis.Redis, before: float) -> dict[str, bytes]:
    """The messages workers have held unacknowledged since before `before` (a Unix time): their task
    (job) ids and delivery tags."""
    tags = client.zrangebyscore(UNACKED_INDEX_KEY, 0, before)
    if not tags:
        return {}
    found = {}
    for tag, raw in zip(tags, client.hmget(UNACKED_KEY, tags), strict=True):
        if raw is not None and (task_id := _task_id(json.loads(raw)[0])) is not None:
            found[task_id] = tag
    return found
