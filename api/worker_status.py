"""What the API knows of the workers: who is alive on a queue (heartbeats) and how deep it is."""

import time

import redis.asyncio as aioredis

from schemas.redis_keys import workers_key


async def live_workers(client: aioredis.Redis, queue: str, ttl_s: float) -> list[str]:
    members = await client.zrangebyscore(workers_key(queue), time.time() - ttl_s, "+inf")
    return [member.decode() if isinstance(member, bytes) else member for member in members]


async def queue_depth(client: aioredis.Redis, queue: str) -> int:
    """Jobs waiting in the queue (Celery's Redis transport keeps a queue as a list of its name)."""
    return await client.llen(queue)
