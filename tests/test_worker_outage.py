"""Without a worker, the service says so: /health names the queue, a new chat answers 503, never a
hang; a stream whose worker dies goes on once the launcher has restarted it."""

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


def test_worker_killed_mid_stream_goes_on_after_its_restart_and_ends_done(
    api: httpx.Client, stack, restart_worker_after
) -> None:
    worker = stack.processes["worker-cpu"].process
    body = {"input_data": "Tell me a very long story.", "max_tokens": 48}
    events = []
    with connect_sse(api, "POST", "/Llama_stream", json=body) as source:
        for sse in iter_events(source):  # keep-alive comments dropped, as a browser does
            events.append(sse)
            if len(events) == 1:
                os.killpg(worker.pid, signal.SIGKILL)

    assert [event.event for event in events] == ["token"] * (len(events) - 1) + ["done"]
    assert [int(event.id) for event in events] == list(range(len(events)))  # no gap, no repeat
