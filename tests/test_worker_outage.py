"""Without a worker, the service says so: /health names the queue, chat answers 503 or an error
event, never a hang."""

import os
import signal
import uuid

import httpx
import pytest
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from tests.support.faults import wait_worker_ready
from tests.support.sse import iter_events
from tests.support.waiting import wait_until


@pytest.fixture
def restart_worker_after(stack: EmbeddedStack):
    yield
    if "worker-cpu" not in stack.processes:  # stopped by the test (a killed one the launcher restarts)
        stack.start_worker("cpu")
    wait_worker_ready(stack)


def test_health_reports_live_workers_per_queue(api: httpx.Client) -> None:
    body = api.get("/health").json()

    assert body["status"] == "ok"
    assert body["redis"]["ok"] and body["mongodb"]["ok"]
    assert body["queues"]["cpu"]["live_workers"] >= 1
    assert "workers" not in body["queues"]["cpu"]  # worker names only for an admin key
    assert set(body["queues"]["cpu"]["models"]) == {"lumimaid", "llama"}


def test_stopped_worker_shows_in_health_and_chat_is_503(
    api: httpx.Client, db, stack, restart_worker_after
) -> None:
    stack.stop_process("worker-cpu")
    asked = f"Anyone there? {uuid.uuid4().hex}"

    # A worker killed just before (another test's) beats on until its heartbeat's TTL lapses.
    health = wait_until(
        lambda: api.get("/health").json(),
        lambda health: health["queues"]["cpu"]["live_workers"] == 0,
        what="the cpu queue to have no live worker",
    )
    response = api.post("/Llama_stream", json={"input_data": asked})

    assert health["status"] == "degraded"
    assert health["queues"]["cpu"]["live_workers"] == 0
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_worker"
    assert "cpu" in response.json()["error"]["message"]
    assert db.messages.count_documents({"content": asked}) == 0


def test_worker_killed_mid_stream_ends_it_with_an_error_event(
    api: httpx.Client, stack, restart_worker_after
) -> None:
    worker = stack.processes["worker-cpu"].process
    body = {"input_data": "Tell me a very long story.", "max_tokens": 1500}
    events = []
    with connect_sse(api, "POST", "/Llama_stream", json=body) as source:
        for sse in iter_events(source):  # keep-alive comments dropped, as a browser does
            events.append(sse)
            if len(events) == 1:
                os.killpg(worker.pid, signal.SIGKILL)

    assert events[0].event == "token"
    assert events[-1].event == "error"
    assert events[-1].json()["code"] == "worker_lost"
    assert events[-1].id == str(len(events) - 1)
