"""Two workers on one queue, as a second host would add one: each has its own name, both take jobs,
and when one is killed the other goes on serving the queue."""

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from celery import Celery

from embedded.processes import ManagedProcess
from embedded.stack import EmbeddedStack
from jobs.keys import PRIORITY_SEP, PRIORITY_STEPS
from tests.support.clients import RACHEL
from tests.support.sse import post_stream
from tests.support.waiting import wait_until

SHORT = {**RACHEL, "max_tokens": 4}


@pytest.fixture
def second_worker(stack: EmbeddedStack) -> Iterator[ManagedProcess]:
    """Another `cpu` worker on this host: the two split its cores (WORKERS_PER_HOST=2)."""
    process = stack.start_worker("cpu", name="cpu-second", env={"WORKERS_PER_HOST": "2"})
    yield process
    stack.stop_process(process.name)


def jobs_done(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("chatbot_worker_jobs_total{")
    )


def worker_names(stack: EmbeddedStack) -> set[str]:
    control = Celery(broker=stack.redis_url)
    control.conf.broker_transport_options = {"priority_steps": PRIORITY_STEPS, "sep": PRIORITY_SEP}
    try:
        return {name for reply in control.control.ping(timeout=2.0) for name in reply}
    finally:
        control.close()


def kill_with_its_pool(process: ManagedProcess) -> None:
    worker = psutil.Process(process.process.pid)
    doomed = [worker, *worker.children(recursive=True)]
    for each in doomed:
        each.kill()
    psutil.wait_procs(doomed, timeout=30)


def test_two_workers_of_a_queue_both_take_jobs_and_one_killed_leaves_the_other_serving(
    api: httpx.Client, stack: EmbeddedStack, second_worker: ManagedProcess
) -> None:
    ports = [stack.worker_metrics_ports["cpu"], stack.worker_metrics_ports["cpu-second"]]
    before = [jobs_done(port) for port in ports]

    def chats_then_who_took_jobs() -> list[bool]:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: post_stream(api, "/Lumimaid_stream", SHORT), range(4)))
        return [jobs_done(p) > b for p, b in zip(ports, before, strict=True)]

    took_jobs = wait_until(chats_then_who_took_jobs, all, what="both workers to take jobs", every_s=0)
    names = worker_names(stack)

    kill_with_its_pool(second_worker)
    response, events = post_stream(api, "/Lumimaid_stream", SHORT)

    host = socket.gethostname()
    assert {f"cpu-{stack.processes['worker-cpu'].process.pid}@{host}", f"cpu-second@{host}"} <= names
    assert took_jobs == [True, True]
    assert not second_worker.running
    assert response.status_code == 200 and events[-1].event == "done", events[-1:]
