"""Protocol edges that real clients hit: a non-streamed completion whose client hangs up, an
EventSource that reconnects after `done`, many first chats with one new character at once, and
replies so short the worker is done before the API has stored the user's turn."""

import json
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from jobs.keys import job_log_key
from tests.support.clients import RACHEL, bearer
from tests.support.extra_api import extra_api
from tests.support.jobs import wait_until_ended
from tests.support.sse import iter_events, post_stream
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def unlimited_api(stack: EmbeddedStack) -> Iterator[str]:
    """A second API process on the session's Redis and MongoDB with no queue limit, so a burst of
    chats is all let in (the limit has its own tests), and patient with a worker slowed down by the
    burst (the silence timeout has its own tests)."""
    with extra_api(stack, "api-unlimited", QUEUE_MAX_DEPTH="0", STREAM_SILENCE_TIMEOUT_S="600") as extra:
        yield extra.url


@pytest.fixture(scope="module")
def patient(unlimited_api: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=unlimited_api, timeout=300, headers=bearer(api_key)) as client:
        yield client


def new_log_keys(broker: redis.Redis, before: set[bytes]) -> set[bytes]:
    return set(broker.scan_iter(job_log_key("*"))) - before


def test_a_non_streamed_completion_whose_client_hangs_up_is_cancelled(
    api: httpx.Client, api_key: str, broker: redis.Redis, stack: EmbeddedStack
) -> None:
    body = json.dumps(
        {
            "model": "lumimaid",
            "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "max_tokens": 1500,
            "temperature": 0,
        }  # fmt: skip
    ).encode()
    before = set(broker.scan_iter(job_log_key("*")))
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", stack.config.api_port)) as client:
        client.sendall(request)
        (key,) = wait_until(lambda: new_log_keys(broker, before), what="the job's log", timeout_s=120)
        job_id = key.decode().split(":")[2]
        wait_until(
            lambda: api.get(f"/jobs/{job_id}").json()["state"] == "running",
            what="the job to start",
            timeout_s=120,
        )
    ended = wait_until_ended(api, job_id)

    assert ended["state"] == "cancelled"
    assert ended["finish_reason"] == "cancelled" and ended["tokens"] < 1500


def test_an_event_source_reconnecting_after_the_end_is_told_there_is_nothing_more(
    patient: httpx.Client,
) -> None:
    api = patient
    response, events = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 4})
    job_id, last = response.headers["X-Job-Id"], events[-1].id

    at_end = api.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": last})
    past_end = api.get(f"/jobs/{job_id}/events?last_event_id={int(last) + 5}")
    with connect_sse(api, "GET", f"/jobs/{job_id}/events", headers={"Last-Event-ID": "0"}) as source:
        rest = [sse.event for sse in iter_events(source)]  # ends by itself after the terminal event

    assert events[-1].event == "done"
    assert (at_end.status_code, at_end.content) == (204, b"")
    assert past_end.status_code == 204
    assert rest[-1] == "done" and len(rest) == int(last)


def first_chat_then_hang_up(client: httpx.Client, body: dict) -> int:
    with client.stream("POST", "/Lumimaid_stream", json=body) as response:
        return response.status_code


def test_a_hundred_concurrent_first_chats_with_one_new_character_all_succeed(
    unlimited_api: str, api_key: str, db
) -> None:
    name = f"Newcomer {uuid.uuid4().hex[:6]}"
    body = {**RACHEL, "character_name": name, "max_tokens": 1}
    limits = httpx.Limits(max_connections=100)
    with (
        httpx.Client(base_url=unlimited_api, timeout=120, limits=limits, headers=bearer(api_key)) as client,
        ThreadPoolExecutor(100) as pool,
    ):
        statuses = list(pool.map(lambda _: first_chat_then_hang_up(client, body), range(100)))

    assert statuses == [200] * 100
    assert db.characters.count_documents({"name": name}) == 1


def test_forty_one_token_replies_are_all_stored_after_their_turns(
    unlimited_api: str, api_key: str, db
) -> None:
    body = {**RACHEL, "character_name": "Brevity", "max_tokens": 1}
    limits = httpx.Limits(max_connections=40)
    with (
        httpx.Client(base_url=unlimited_api, timeout=300, limits=limits, headers=bearer(api_key)) as client,
        ThreadPoolExecutor(40) as pool,
    ):
        chats = list(pool.map(lambda _: post_stream(client, "/Lumimaid_stream", body), range(40)))

    finals = [events[-1] for _, events in chats]
    job_ids = [response.headers["X-Job-Id"] for response, _ in chats]
    replies = {reply["job_id"]: reply for reply in db.messages.find({"job_id": {"$in": job_ids}})
               if reply["role"] == "assistant"}  # fmt: skip
    turns = {turn["job_id"]: turn for turn in db.messages.find({"job_id": {"$in": job_ids}, "role": "user"})}

    assert [final.event for final in finals] == ["done"] * 40, [final.data for final in finals]
    assert all(final.data["message_id"] for final in finals)
    assert set(replies) == set(job_ids) == set(turns)
    assert all(turns[job]["created_at"] <= replies[job]["created_at"] for job in job_ids)
