"""What the API knows of the workers: who is alive on a queue (heartbeats) and how deep it is."""

import time

import redis.asyncio as aioredis

from jobs.keys import PRIORITY_STEPS, queue_keys, workers_key


async def live_workers(client: aioredis.Redis, queue: str, ttl_s: float) -> list[str]:
    members = await client.zrangebyscore(workers_key(queue), time.time() - ttl_s, "+inf")
    return [member.decode() if isinstance(member, bytes) else member for member in members]


async def process_alive(client: aioredis.Redis, queue: str, process: str, lost_after_s: float) -> bool:
    """Whether the worker process (its heartbeat member) has beaten within lost_after_s."""
    beat = await client.zscore(workers_key(queue), process)
    return beat is not None and time.time() - beat < lost_after_s


async def queue_depth(client: aioredis.Redis, queue: str, up_to_priority: int = PRIORITY_STEPS[-1]) -> int:
    """Jobs waiting in the queue at `up_to_priority` or more urgent (one Redis list per priority step)."""
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue, up_to_priority):
        pipe.llen(key)
    return sum(await pipe.execute())
