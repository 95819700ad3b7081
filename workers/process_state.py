"""What a worker process sets up once at start and keeps: MongoDB, Redis, its models, its heartbeat."""

import logging

import redis

from model_registry import get_registry
from mongo.connection import connect_mongo
from settings import get_settings
from workers.heartbeat import Heartbeat
from workers.metrics import serve_metrics
from workers.runtimes.resident import load_models

log = logging.getLogger(__name__)

_redis: redis.Redis | None = None
_heartbeat: Heartbeat | None = None


def start_worker_process(queue: str) -> None:
    global _redis, _heartbeat
    settings = get_settings()
    specs = [spec for spec in get_registry().values() if spec.queue == queue]
    if not specs and queue != settings.training_queue:  # a training worker loads its model per job
        raise RuntimeError(f"no model in the registry is served from queue {queue!r}")
    connect_mongo(settings.mongo_uri, settings.mongo_db)
    _redis = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections
        )
    )
    serve_metrics(settings.worker_metrics_port)
    load_models(specs, settings)
    _heartbeat = Heartbeat(_redis, queue, settings.worker_heartbeat_s, settings.worker_heartbeat_ttl_s)
    _heartbeat.start()
    log.info(
        "worker process ready on queue %s with %s",
        queue,
        ", ".join(spec.name for spec in specs) or "no model",
    )


def stop_worker_process() -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


def redis_client() -> redis.Redis:
    if _redis is None:
        raise RuntimeError("the worker process was not started (start_worker_process)")
    return _redis
