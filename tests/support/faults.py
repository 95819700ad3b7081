"""Helpers of the fault tests: the processes of the fault stack (found from the PIDs it started, never
by name), signals sent to them with psutil, and waiting for the stack to be whole again."""

import socket
import time
from functools import partial

import httpx
import psutil
import redis

from embedded.stack import EmbeddedStack
from jobs.keys import workers_key
from tests.support.waiting import wait_until

# What a probe meets while a killed service is on its way back: each is "not yet", not a failure.
TRANSIENT = (httpx.HTTPError, OSError, redis.RedisError, psutil.Error)

# `wait_until` through a fault: patient with a model loading again, deaf to the errors of the gap.
wait_through_faults = partial(wait_until, timeout_s=900, every_s=0.1, ignoring=TRANSIENT)


def service(stack: EmbeddedStack, name: str) -> psutil.Process:
    """The service's main process, as the launcher started it (the current one, after a restart)."""
    return psutil.Process(stack.processes[name].pid)


def pool_process(stack: EmbeddedStack, queue: str = "cpu") -> psutil.Process:
    """The Celery pool process of the queue's worker: the one that holds the model and runs jobs."""
    return wait_through_faults(
        lambda: service(stack, f"worker-{queue}").children(), what="the worker's pool process"
    )[0]


def wait_healthy(api: httpx.Client, timeout_s: float = 600) -> dict:
    """Until /health says every dependency and queue is served (see wait_worker_ready too)."""

    def healthy() -> dict | None:
        response = api.get("/health", timeout=5)
        return response.json() if response.status_code == 200 and response.json()["status"] == "ok" else None

    return wait_through_faults(healthy, what="a healthy stack", timeout_s=timeout_s)


FRESH_BEAT_S = 3.0


def wait_worker_ready(stack: EmbeddedStack, queue: str = "cpu", timeout_s: float = 600) -> None:
    """Until the queue's current pool process (a threads pool's: the main one) beats, its models
    loaded: a dead process's beat stays in the set until its TTL runs out, so /health alone can say
    "served" too early."""
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)

    def beating() -> bool:
        process = stack.processes.get(f"worker-{queue}")
        if process is None or not process.running:
            return False
        main = psutil.Process(process.pid)
        # A prefork worker beats from its pool process; a threads-pool worker (a multi-slot engine)
        # from its main process.
        pools = {
            f"{socket.gethostname()}:{p.pid}" for p in [main, *main.children()] if p.status() != "zombie"
        }
        fresh = client.zrangebyscore(workers_key(queue), time.time() - FRESH_BEAT_S, "+inf")
        return bool(pools & {member.decode() for member in fresh})

    try:
        wait_through_faults(beating, what=f"the {queue} worker's pool process to beat", timeout_s=timeout_s)
    finally:
        client.close()
