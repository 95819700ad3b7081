"""Faults injected into a running stack (its own, `fault_stack`, so the session's stays healthy), with
psutil signals to the processes it started: each one ends the client's stream with a terminal event
naming the cause, loses nothing the user said or the model generated, and the stack comes back by
itself (its launcher restarts what died)."""

import json
import signal
from collections.abc import Callable, Iterator

import httpx
import pymongo
import pytest
import redis
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from jobs.keys import PRIORITY_SEP
from schemas.jobs import BATCH_PRIORITY
from tests.support.clients import ADMIN_KEY, RACHEL, keyed_client
from tests.support.faults import pool_process, service, wait_healthy, wait_through_faults, wait_worker_ready
from tests.support.jobs import wait_for_reply, wait_until_ended
from tests.support.sse import StreamEvent, iter_events, post_stream, streamed_text
from tests.support.stacks import stack_db

# Long enough to be mid-reply at the fault, short enough not to hold the worker for long if it goes
# on (this machine may make a few tokens a second).
LONG = {**RACHEL, "input_data": "*I ask Rachel to tell me a very long story.*", "max_tokens": 120}
SHORT = {**RACHEL, "max_tokens": 4}


@pytest.fixture(scope="module")
def api(fault_stack: EmbeddedStack) -> Iterator[httpx.Client]:
    with keyed_client(fault_stack.api_url, ADMIN_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def db(fault_stack: EmbeddedStack) -> Iterator[pymongo.database.Database]:
    with stack_db(fault_stack) as database:
        yield database


def wait_whole(api: httpx.Client, stack: EmbeddedStack) -> None:
    wait_healthy(api)
    wait_worker_ready(stack)


@pytest.fixture(autouse=True)
def whole_before_and_after(api: httpx.Client, fault_stack: EmbeddedStack) -> Iterator[None]:
    wait_whole(api, fault_stack)
    yield
    wait_whole(api, fault_stack)


def stream_with_fault(api: httpx.Client, body: dict, fault: Callable[[], None], after_tokens: int = 3):
    """POST a chat, inject the fault after `after_tokens` tokens, read to the end: headers, events."""
    events: list[StreamEvent] = []
    with connect_sse(api, "POST", "/Lumimaid_stream", json=body) as source:
        assert source.response.status_code == 200
        for sse in iter_events(source):
            events.append(StreamEvent(sse.id, sse.event, json.loads(sse.data)))
            if len(events) == after_tokens:
                fault()
        return source.response.headers, events


def assert_ends_with(events: list[StreamEvent], code: str) -> None:
    assert [event.event for event in events[:-1]] == ["token"] * (len(events) - 1)
    assert (events[-1].event, events[-1].data.get("code")) == ("error", code), events[-1]
    assert [int(event.id) for event in events] == list(range(len(events)))


def new_chat(api: httpx.Client) -> tuple[int, str, bool]:
    """A new chat's status, its final event (or error code) and whether its reply was stored."""
    response, events = post_stream(api, "/Lumimaid_stream", SHORT)
    if not events:
        return response.status_code, response.json()["error"]["code"], False
    final = events[-1]
    return response.status_code, final.data.get("code", final.event), bool(final.data.get("message_id"))


CHAT_OK = (200, "done", True)


def assert_taken_over(events: list[StreamEvent]) -> None:
    """The stream went on past its worker's death to its end: every id once, in order, then `done`."""
    assert [event.event for event in events] == ["token"] * (len(events) - 1) + ["done"], events[-1]
    assert [int(event.id) for event in events] == list(range(len(events)))


def test_a_killed_pool_process_hands_its_job_over_and_the_stream_ends_done_whole(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    pool = pool_process(fault_stack)
    headers, events = stream_with_fault(api, LONG, lambda: pool.send_signal(signal.SIGKILL))
    job_id = headers["X-Job-Id"]

    reply = wait_for_reply(db, job_id)
    turn = db.messages.find_one({"job_id": job_id, "role": "user"})
    job = api.get(f"/jobs/{job_id}").json()

    assert_taken_over(events)
    assert turn["content"] == LONG["input_data"]
    assert (reply["status"], reply["content"]) == ("complete", streamed_text(events))
    assert (job["state"], job["text"]) == ("done", streamed_text(events))
    wait_whole(api, fault_stack)  # Celery replaces the pool process, which loads the model again
    assert new_chat(api) == CHAT_OK


def test_a_job_told_no_worker_never_runs_later(api: httpx.Client, db, fault_stack: EmbeddedStack) -> None:
    """The queue's only pool process dies while a chat waits behind another: the waiting chat ends
    (no_worker once no heartbeat is left, or it runs on the new pool process) and a job whose client
    was told no_worker is not run when the worker is back."""
    pool = pool_process(fault_stack)
    with connect_sse(api, "POST", "/Lumimaid_stream", json={**LONG, "detach": True}) as running:
        next(iter_events(running))
        running_id = running.response.headers["X-Job-Id"]
    response, queued_events = None, []
    with connect_sse(api, "POST", "/Lumimaid_stream", json=SHORT) as queued:
        response = queued.response
        pool.send_signal(signal.SIGKILL)
        queued_events = [StreamEvent(sse.id, sse.event, json.loads(sse.data)) for sse in iter_events(queued)]
    queued_id = response.headers["X-Job-Id"]
    api.delete(f"/jobs/{running_id}")  # the detached job would be taken over: not now
    wait_whole(api, fault_stack)
    assert new_chat(api) == CHAT_OK  # the worker is back and has taken what was waiting

    final = queued_events[-1]
    if final.event == "error":
        assert final.data["code"] == "no_worker"
        assert api.get(f"/jobs/{queued_id}").json()["error"]["code"] == "no_worker"
        assert db.messages.find_one({"job_id": queued_id, "role": "assistant"}) is None
    else:
        assert final.event == "done" and final.data["message_id"]


def test_a_batch_item_whose_worker_dies_runs_again_and_completes(
    api: httpx.Client, fault_stack: EmbeddedStack
) -> None:
    items = [{"custom_id": str(index), "character": {"name": "Bard", "description": "A travelling bard."},
              "messages": [{"role": "user", "content": "Sing me a long ballad."}],
              "params": {"max_tokens": 64 if index == 0 else 4}} for index in range(3)]  # fmt: skip
    batch = api.post("/batches", json={"items": items}).json()
    results = f"/batches/{batch['id']}/results"

    def first_item_generating() -> bool:
        lines = api.get(results).text.splitlines()  # none until the batch's items are made
        first = json.loads(lines[0]) if lines else {"state": "pending"}
        return first["state"] == "running" and api.get(f"/jobs/{first['job_id']}").json()["tokens"] > 2

    wait_through_faults(first_item_generating, what="the first item to be generating")
    pool_process(fault_stack).send_signal(signal.SIGKILL)
    done = wait_through_faults(
        lambda: api.get(f"/batches/{batch['id']}").json()["state"] == "completed",
        what="the batch to complete",
    )
    rows = [json.loads(line) for line in api.get(results).text.splitlines()]

    assert done
    assert [row["state"] for row in rows] == ["complete"] * 3
    assert rows[0]["text"] and rows[0]["usage"]["completion_tokens"] > 2


def test_a_killed_worker_main_process_is_restarted_and_the_stream_goes_on_to_done(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    worker = service(fault_stack, "worker-cpu")
    headers, events = stream_with_fault(api, LONG, lambda: worker.send_signal(signal.SIGKILL))

    reply = wait_for_reply(db, headers["X-Job-Id"])
    wait_whole(api, fault_stack)

    assert_taken_over(events)
    assert (reply["status"], reply["content"]) == ("complete", streamed_text(events))
    assert service(fault_stack, "worker-cpu").pid != worker.pid
    assert new_chat(api) == CHAT_OK


def test_redis_killed_mid_stream_ends_it_with_redis_unavailable_and_is_restarted(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    redis_server = service(fault_stack, "redis")
    headers, events = stream_with_fault(api, LONG, lambda: redis_server.send_signal(signal.SIGKILL))
    wait_whole(api, fault_stack)

    assert_ends_with(events, "redis_unavailable")
    assert service(fault_stack, "redis").pid != redis_server.pid
    assert db.messages.find_one({"job_id": headers["X-Job-Id"], "role": "user"})
    assert new_chat(api) == CHAT_OK


def test_redis_stopped_mid_stream_ends_it_with_redis_unavailable_and_the_job_ends_once_it_is_back(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    redis_server = service(fault_stack, "redis")
    try:
        headers, events = stream_with_fault(
            api, {**LONG, "max_tokens": 48}, lambda: redis_server.send_signal(signal.SIGSTOP)
        )
        health = api.get("/health", timeout=10)
    finally:
        redis_server.send_signal(signal.SIGCONT)
    job_id = headers["X-Job-Id"]

    reply = wait_for_reply(db, job_id, timeout_s=600)
    ended = wait_until_ended(api, job_id)

    assert_ends_with(events, "redis_unavailable")
    assert health.status_code == 503 and "redis" in health.json()["down"]
    assert reply["role"] == "assistant" and ended["state"] in ("done", "cancelled", "error")


def test_mongodb_stopped_while_a_reply_is_written_keeps_the_reply_and_stores_it_once_back(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    ferretdb = service(fault_stack, "ferretdb")
    try:
        headers, events = stream_with_fault(
            api, {**LONG, "max_tokens": 48}, lambda: ferretdb.send_signal(signal.SIGSTOP), after_tokens=1
        )
        health = api.get("/health", timeout=10)
        characters = api.get("/characters", timeout=60)
    finally:
        ferretdb.send_signal(signal.SIGCONT)
    job_id = headers["X-Job-Id"]

    reply = wait_for_reply(db, job_id)

    assert (events[-1].event, events[-1].data["finish_reason"]) == ("done", "length")
    assert health.status_code == 503 and health.json()["down"] == ["mongodb"]
    assert (characters.status_code, characters.json()["error"]["code"]) == (503, "mongodb_unavailable")
    # Nothing of the server's address or the driver's internals reaches the client.
    leaks = (
        fault_stack.mongo_socket.name,
        "sockets",
        "127.0.0.1",
        "localhost",
        "Timeout",
        "timed out",
        "Topology",
    )
    assert [leak for leak in leaks if leak in characters.text] == []
    assert reply["content"] == streamed_text(events) and reply["status"] == "complete"


def test_mongodb_killed_is_restarted_and_the_reply_generated_meanwhile_is_stored(
    api: httpx.Client, db, fault_stack: EmbeddedStack
) -> None:
    ferretdb = service(fault_stack, "ferretdb")
    headers, events = stream_with_fault(
        api, {**LONG, "max_tokens": 48}, lambda: ferretdb.send_signal(signal.SIGKILL), after_tokens=1
    )

    reply = wait_for_reply(db, headers["X-Job-Id"], timeout_s=300)
    wait_whole(api, fault_stack)

    assert events[-1].event == "done"
    assert reply["content"] == streamed_text(events)
    assert service(fault_stack, "ferretdb").pid != ferretdb.pid
    assert new_chat(api) == CHAT_OK


def test_a_batch_whose_queued_messages_are_lost_with_redis_is_enqueued_again_and_completes(
    api: httpx.Client, fault_stack: EmbeddedStack
) -> None:
    broker = redis.Redis.from_url(fault_stack.redis_url)
    blocking = {**LONG, "detach": True}
    with connect_sse(api, "POST", "/Lumimaid_stream", json=blocking) as blocker:
        next(iter_events(blocker))  # the only worker is busy: the batch's items wait in the queue
    items = [{"character": {"name": "Bard"}, "messages": [{"role": "user", "content": "Hail!"}],
              "params": {"max_tokens": 4}} for _ in range(3)]  # fmt: skip
    batch = api.post("/batches", json={"items": items}).json()
    wait_through_faults(
        lambda: broker.llen(f"cpu{PRIORITY_SEP}{BATCH_PRIORITY}") == 3, what="the items in the queue"
    )
    broker.delete(f"cpu{PRIORITY_SEP}{BATCH_PRIORITY}")  # the messages are lost...
    service(fault_stack, "redis").send_signal(signal.SIGKILL)  # ...and so is Redis, for a moment
    broker.close()

    done = wait_through_faults(
        lambda: api.get(f"/batches/{batch['id']}").json()["counts"]["complete"] == 3,
        what="the batch to complete",
    )

    assert done
