"""API replicas: a second API process beside the session stack's, on its own port, against the same Redis
and MongoDB. Each process subscribes only to the jobs it streams, so each receives only its own streams'
events; a stream started on one is resumed on the other from the job's log in Redis."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from embedded.stack import EmbeddedStack
from jobs.log import events, read_log
from tests.support.clients import ADMIN_KEY, RACHEL, bearer
from tests.support.extra_api import extra_api
from tests.support.jobs import wait_until_ended
from tests.support.metrics import samples, value
from tests.support.sse import post_stream, read_events, start_detached
from tests.support.waiting import wait_until

SHORT = {**RACHEL, "max_tokens": 8}
STREAMS = 40  # half on each process
CLIENTS = 8  # at once: within the queue's admission depth


@pytest.fixture(scope="module")
def replica(stack: EmbeddedStack, api: httpx.Client) -> Iterator[tuple[httpx.Client, int]]:
    """A second API process: its client (sending what the session's client sends) and its PID."""
    with (
        extra_api(stack, "api-replica") as extra,
        httpx.Client(base_url=extra.url, headers=api.headers, timeout=120) as client,
    ):
        yield client, extra.pid


def received(client: httpx.Client, pid: int) -> float:
    """The process's count of job event messages received from Redis."""
    return value(
        samples(client.get("/metrics", headers=bearer(ADMIN_KEY)).text),
        "chatbot_relay_messages_received_total",
        pid=str(pid),
    )


def no_open_stream(client: httpx.Client) -> bool:
    return value(samples(client.get("/metrics", headers=bearer(ADMIN_KEY)).text), "chatbot_open_streams") == 0


def published(broker: redis.Redis, job_id: str) -> int:
    """The events the worker published for the job: each is in its log too."""
    return len(events(read_log(broker, job_id)))


def test_streams_split_between_two_api_processes_complete_and_each_receives_its_own_events_only(
    api: httpx.Client, stack: EmbeddedStack, broker: redis.Redis, replica: tuple[httpx.Client, int]
) -> None:
    other, other_pid = replica
    processes = {stack.processes["api"].pid: api, other_pid: other}
    wait_until(
        lambda: [no_open_stream(client) for client in processes.values()],
        all,
        what="no stream open on either API process (a previous test's)",
    )
    before = {pid: received(client, pid) for pid, client in processes.items()}

    def stream(pid: int) -> tuple[int, httpx.Response, list]:
        return pid, *post_stream(processes[pid], "/Lumimaid_stream", SHORT)

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(stream, list(processes) * (STREAMS // 2)))

    after = {pid: received(client, pid) for pid, client in processes.items()}
    assert [(response.status_code, events[-1].event) for _, response, events in results] == [
        (200, "done")
    ] * STREAMS
    for pid in processes:
        own = sum(published(broker, response.headers["X-Job-Id"]) for p, response, _ in results if p == pid)
        assert own > STREAMS // 2  # every job published at least `started` and `done`
        assert after[pid] - before[pid] == own, f"API process {pid}"


def test_a_stream_started_on_one_api_process_resumes_on_the_other(
    api: httpx.Client, replica: tuple[httpx.Client, int]
) -> None:
    other, _ = replica
    job_id, seen = start_detached(api, tokens=3, body={**RACHEL, "max_tokens": 40, "detach": True})

    response, rest = read_events(other, f"/jobs/{job_id}/events", headers={"Last-Event-ID": seen[-1].id})

    wait_until_ended(api, job_id)
    _, everything = read_events(api, f"/jobs/{job_id}/events")
    assert response.status_code == 200 and response.headers["X-Job-Id"] == job_id
    assert [int(event.id) for event in seen] == [0, 1, 2]
    assert rest == everything[3:] and rest[-1].event == "done"
