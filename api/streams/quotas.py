"""Per-key quotas, atomic in Redis: requests per minute and batch items per day (the `limits`
library's sliding-window counters: two counters a key, checked and taken in one script, nothing
taken when refused), concurrent jobs and queued tokens (a Lua script here).

Past a quota the caller gets 429 with Retry-After and the quota's name in `error.quota`.

A job counts against its key's concurrent jobs from admission until its terminal event, and its
max_tokens against the queued tokens until a worker starts it; the job's transitions free both
(jobs/transitions.py: the worker's take and finish, the API's end and cancel), and every entry
lapses on its own in the end (a lost worker, a lost API) so a count cannot leak.
"""

import time
from functools import lru_cache

import redis.asyncio as aioredis
from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api.http.errors import ApiError
from api.http.redis_clients import limits_storage
from jobs.keys import quota_jobs_key, quota_queued_key, quota_tokens_key
from settings import Settings

# A running job's count lapses this long after its admission at the latest (its own end frees it
# long before; this covers a worker and an API both lost).
RUNNING_LAPSE_S = 3600

ADMIT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #lapsed > 0 then
  redis.call('ZREM', KEYS[2], unpack(lapsed))
  redis.call('HDEL', KEYS[3], unpack(lapsed))
end
local max_jobs, max_tokens, tokens = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
local jobs = redis.call('ZCARD', KEYS[1])
if max_jobs > 0 and jobs >= max_jobs then
  return {0, 'concurrent_jobs', jobs}
end
local queued = 0
for _, value in ipairs(redis.call('HVALS', KEYS[3])) do
  queued = queued + tonumber(value)
end
if max_tokens > 0 and queued + tokens > max_tokens then
  return {0, 'queued_tokens', queued}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[6], tokens)
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], math.ceil(ARGV[2] - now))
end
return {1, '', 0}
"""


def quota_error(quota: str, message: str, retry_after_s: int) -> ApiError:
    return ApiError(
        429,
        "quota_exceeded",
        message,
        headers={"Retry-After": str(max(1, retry_after_s))},
        quota=quota,
    )


async def admit_to_quota(
    client: aioredis.Redis, settings: Settings, quota: str, job_id: str, max_tokens: int
) -> None:
    """Count the job against its key's concurrent jobs and queued tokens, or refuse it (429)."""
    now = time.time()
    queued_lapse = now + settings.queue_timeout_s + 60
    keys = (quota_jobs_key(quota), quota_queued_key(quota), quota_tokens_key(quota))
    limits = (settings.quota_concurrent_jobs, settings.quota_queued_tokens)
    admitted, name, count = await client.eval(
        ADMIT, 3, *keys, now, now + RUNNING_LAPSE_S, queued_lapse, *limits, job_id, max_tokens
    )
    if admitted:
        return
    name = name.decode() if isinstance(name, bytes) else name
    if name == "concurrent_jobs":
        message = f"this key already has {count} jobs queued or running (quota {limits[0]})"
    else:
        message = (
            f"this key already has {count} tokens waiting in queues; {max_tokens} more would pass "
            f"its quota of {limits[1]}"
        )
    raise quota_error(name, message, settings.queue_full_retry_after_s)


@lru_cache
def _storage(redis_url: str) -> RedisStorage:
    return limits_storage(redis_url)


def _retry_after(limiter, item, quota: str) -> int:
    reset_at = limiter.get_window_stats(item, quota).reset_time
    return int(reset_at - time.time()) + 1


def check_request_rate(settings: Settings, quota: str) -> None:
    """One request of the key's requests-per-minute quota, or 429. Blocking: call it from a thread."""
    per_minute = settings.quota_requests_per_minute
    if not per_minute:
        return
    limiter = SlidingWindowCounterRateLimiter(_storage(settings.redis_url))
    item = RateLimitItemPerMinute(per_minute)
    if not limiter.hit(item, quota):
        message = f"this key has made {per_minute} requests in the last minute (its quota)"
        raise quota_error("requests_per_minute", message, _retry_after(limiter, item, quota))


def take_batch_items(settings: Settings, quota: str, items: int) -> None:
    """Count a batch's items against the key's items-per-day quota, or 429 with nothing counted.
    Blocking: call it from a thread."""
    per_day = settings.quota_batch_items_per_day
    if not per_day:
        return
    limiter = SlidingWindowCounterRateLimiter(_storage(settings.redis_url))
    item = RateLimitItemPerDay(per_day)
    if not limiter.hit(item, quota, cost=items):
        message = f"{items} more batch items would pass this key's quota of {per_day} a day"
        raise quota_error("batch_items_per_day", message, _retry_after(limiter, item, quota))
