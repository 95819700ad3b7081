"""Backpressure: admit an interactive job only while its queue has room, atomically, else 429.

Each queue has an admission set in Redis: the ids of the interactive jobs admitted and not yet
started, each scored with the time it was admitted. One Lua script drops the lapsed entries, counts
the rest and adds the new job only below the limit, so a burst of concurrent chats can never admit
more than the limit (a count read then a separate enqueue could). A job leaves the set when a worker
takes it, when it is cancelled or fails to start (jobs/transitions.py), and at the latest when its
admission lapses, a little after QUEUE_TIMEOUT_S, when Celery has expired it anyway: a slot cannot
leak. Batch items are never admitted here: they run below every chat. A queue without a limit keeps
its set too: its workers' idle engines read the newest entries to learn that more jobs are on their
way (jobs/arrivals.py).
"""

import time

import redis.asyncio as aioredis

from api.http.errors import ApiError
from jobs.keys import admission_key
from settings import Settings

# Past QUEUE_TIMEOUT_S the job has expired unstarted; the margin covers clock skew between hosts.
LAPSE_MARGIN_S = 60

# ARGV: now, the oldest admission that has not lapsed, the limit (0: none), the job's id, the lapse in s.
ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local admitted = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if limit > 0 and admitted >= limit then
  return {0, admitted}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return {1, admitted + 1}
"""


def max_depth(settings: Settings, queue: str) -> int:
    """The queue's own limit when it has one, else QUEUE_MAX_DEPTH; 0 means no limit."""
    return settings.queue_max_depths.get(queue, settings.queue_max_depth)


async def admit_job(client: aioredis.Redis, settings: Settings, queue: str, job_id: str) -> None:
    """Take a slot of the queue for the job, or refuse it with 429 `queue_full` and Retry-After (never
    when the queue has no limit)."""
    limit = max_depth(settings, queue)
    now = time.time()
    lapse_s = settings.queue_timeout_s + LAPSE_MARGIN_S
    admitted, waiting = await client.eval(
        ADMIT, 1, admission_key(queue), now, now - lapse_s, limit, job_id, lapse_s
    )
    if not admitted:
        raise ApiError(
            429,
            "queue_full",
            f"queue {queue!r} already has {waiting} jobs waiting (limit {limit}); try again later",
            headers={"Retry-After": str(settings.queue_full_retry_after_s)},
        )
