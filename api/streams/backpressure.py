"""Backpressure: refuse an interactive job with 429 while its queue already holds too many.

Checked before anything is stored or enqueued. Only the jobs a new chat would wait behind count:
interactive ones (batch items run at a lower priority, so a long batch never locks chats out).
The check and the enqueue are not atomic: concurrent requests can pass the limit by a few.
"""

import redis.asyncio as aioredis

from api.http.errors import ApiError
from api.streams.worker_status import queue_depth
from schemas.jobs import INTERACTIVE_PRIORITY
from settings import Settings


def max_depth(settings: Settings, queue: str) -> int:
    """The queue's own limit when it has one, else QUEUE_MAX_DEPTH; 0 means no limit."""
    return settings.queue_max_depths.get(queue, settings.queue_max_depth)


async def ensure_queue_room(client: aioredis.Redis, settings: Settings, queue: str) -> None:
    limit = max_depth(settings, queue)
    if not limit:
        return
    waiting = await queue_depth(client, queue, up_to_priority=INTERACTIVE_PRIORITY)
    if waiting >= limit:
        raise ApiError(
            429,
            "queue_full",
            f"queue {queue!r} already has {waiting} jobs waiting (limit {limit}); try again later",
            headers={"Retry-After": str(settings.queue_full_retry_after_s)},
        )
