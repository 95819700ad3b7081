"""Celery signals that make each pool process load its models once, when it starts."""

import os

from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutdown

from settings import get_settings
from workers.process_state import start_worker_process, stop_worker_process


def _forked_pool() -> bool:
    return os.environ.get("WORKER_POOL", "prefork") == "prefork"


@worker_process_init.connect
def _load_in_pool_process(**_: object) -> None:
    """Prefork: each pool process loads its own models (never the parent: no model across fork)."""
    queue = get_settings().worker_queue
    if queue:
        start_worker_process(queue)


@worker_init.connect
def _load_in_worker(**_: object) -> None:
    """Thread pool: the worker process itself holds the models its threads share."""
    queue = get_settings().worker_queue
    if queue and not _forked_pool():
        start_worker_process(queue)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _leave(**_: object) -> None:
    stop_worker_process()
