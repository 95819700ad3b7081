"""What a worker process sets up once at start and keeps: MongoDB, Redis, its models, its heartbeat."""

import logging
from functools import partial

import redis

from jobs.arrivals import jobs_on_the_way
from model_registry import get_registry
from mongo.connection import connect_mongo
from runtimes.resident import expect_arrivals, load_models
from settings import get_settings
from workers.heartbeat import Heartbeat
from workers.metrics import serve_metrics
from workers.reply_outbox import OutboxFlusher

# A Redis that hangs (stopped, partitioned) fails a command after this long instead of never.
REDIS_SOCKET_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)

_redis: redis.Redis | None = None
_heartbeat: Heartbeat | None = None
_outbox: OutboxFlusher | None = None


def start_worker_process(queue: str) -> None:
    global _redis, _heartbeat, _outbox
    settings = get_settings()
    specs = [spec for spec in get_registry().values() if spec.queue == queue]
    if not specs and queue != settings.training_queue:  # a training worker loads its model per job
        raise RuntimeError(f"no model in the registry is served from queue {queue!r}")
    connect_mongo(settings.mongo_uri, settings.mongo_db)
    _redis = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
        )
    )
    serve_metrics(settings.worker_metrics_port, settings.worker_metrics_host)
    load_models(specs, settings)
    expect_arrivals(partial(jobs_on_the_way, _redis, queue))
    _heartbeat = Heartbeat(_redis, queue, settings.worker_heartbeat_s, settings.worker_heartbeat_ttl_s)
    _heartbeat.start()
    _outbox = OutboxFlusher(_redis)
    _outbox.start()
    log.info(
        "worker process ready on queue %s with %s",
        queue,
        ", ".join(spec.name for spec in specs) or "no model",
    )


def stop_worker_process() -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
    if _outbox is not None:
        _outbox.stop()


def redis_client() -> redis.Redis:
    if _redis is None:
        raise RuntimeError("the worker process was not started (start_worker_process)")
    return _redis
