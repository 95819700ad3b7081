"""Celery signals that make each pool process load its models once, when it starts."""

from celery.signals import worker_process_init, worker_process_shutdown

from settings import get_settings
from workers.process_state import start_worker_process, stop_worker_process


@worker_process_init.connect
def _load_resident_models(**_: object) -> None:
    queue = get_settings().worker_queue
    if queue:
        start_worker_process(queue)


@worker_process_shutdown.connect
def _leave(**_: object) -> None:
    stop_worker_process()
