"""The API process's Redis clients. Every command has a deadline, so a Redis that hangs (stopped,
partitioned) answers a request with 503 `redis_unavailable` (api/http/errors.py) within seconds
instead of holding it until Redis wakes up; only the event hub's pub/sub connection waits unbounded
for its messages."""

import redis.asyncio as aioredis
from limits.storage import RedisStorage

from settings import Settings

# How long a Redis command (or a connection) may take. Above the longest blocking read the API makes
# (a resumed stream's XREAD BLOCK of api.streams.relay.POLL_S).
REDIS_TIMEOUT_S = 2.0


def redis_client(settings: Settings) -> aioredis.Redis:
    """The process's client for commands: one pool, shared by every request."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    return aioredis.Redis.from_pool(pool)


def listener_client(settings: Settings) -> aioredis.Redis:
    """The client of the event hub's pub/sub connection (api/streams/event_hub.py): it waits as long
    as no message comes, so no read timeout (a stream notices a dead Redis by its own probes)."""
    return aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S)


def limits_storage(redis_url: str) -> RedisStorage:
    """The `limits` library's counters (the per-key quotas of api/streams/quotas.py), its own
    synchronous client with the same deadlines."""
    return RedisStorage(redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
