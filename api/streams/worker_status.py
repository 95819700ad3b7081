"""What the API knows of the workers: who is alive on a queue (heartbeats) and how deep it is."""

import time

import redis.asyncio as aioredis

from schemas.redis_keys import PRIORITY_STEPS, queue_keys, workers_key


async def live_workers(client: aioredis.Redis, queue: str, ttl_s: float) -> list[str]:
    members = await client.zrangebyscore(workers_key(queue), time.time() - ttl_s, "+inf")
    return [member.decode() if isinstance(member, bytes) else member for member in members]


async def queue_depth(client: aioredis.Redis, queue: str, up_to_priority: int = PRIORITY_STEPS[-1]) -> int:
    """Jobs waiting in the queue at `up_to_priority` or more urgent (one Redis list per priority step)."""
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue, up_to_priority):
        pipe.llen(key)
    return sum(await pipe.execute())
