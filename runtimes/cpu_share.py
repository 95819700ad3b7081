"""The CPU threads one worker process may use: the host's cores split between the workers started there.

A worker that gives llama.cpp (or torch) every core spins its threads against those of the other
workers on the host: two such workers on 2 cores fell from 69 to 20 tok/s at 4 clients. With
WORKERS_PER_HOST (or WORKER_THREADS, or a registry `n_threads`) each takes its share instead.
"""

import os

from settings import Settings


def host_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(settings: Settings) -> int:
    if settings.worker_threads:
        return settings.worker_threads
    return max(1, host_cores() // settings.workers_per_host)
