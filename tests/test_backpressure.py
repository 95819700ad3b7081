"""A full queue refuses new chats with 429 and Retry-After, before anything is stored or enqueued."""

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from tests.support.clients import RACHEL
from tests.support.extra_api import extra_api_client
from tests.support.jobs import wait_for_reply
from tests.support.load import LONG_STORY, worker_full
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def api_with_depth_limit_1(stack: EmbeddedStack, api_key: str) -> Iterator[httpx.Client]:
    """A second API process on the session's Redis and MongoDB, allowing one waiting chat per queue."""
    with extra_api_client(stack, "api-depth-1", api_key, QUEUE_MAX_DEPTH="1") as client:
        yield client


def test_full_queue_answers_429_with_retry_after_and_stores_nothing(
    api_with_depth_limit_1: httpx.Client, db
) -> None:
    api = api_with_depth_limit_1
    with worker_full(api), ExitStack() as streams:
        waiting = streams.enter_context(
            connect_sse(api, "POST", "/Lumimaid_stream", json={**RACHEL, **LONG_STORY})
        )
        assert waiting.response.status_code == 200
        waiting_job = waiting.response.headers["X-Job-Id"]
        # The worker gives it back to its queue while its key holds every slot (workers/slot_gate.py).
        assert api.get(f"/jobs/{waiting_job}").json()["state"] == "queued"
        conversations_before = db.conversations.count_documents({})
        refused_text = f"Am I refused? {uuid.uuid4().hex}"

        response = api.post("/Llama_stream", json={"input_data": refused_text, "max_tokens": 4})

        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "queue_full"
        assert "cpu" in response.json()["error"]["message"]
        assert db.messages.count_documents({"content": refused_text}) == 0
        assert db.conversations.count_documents({}) == conversations_before
        assert api.get(f"/jobs/{waiting_job}").json()["state"] == "queued"
    # All clients have gone: their jobs stop at their next token and the worker is free again.
    reply = wait_for_reply(db, waiting_job)
    assert reply["status"] == "cancelled" and reply["finish_reason"] == "cancelled"


def test_waiting_batch_items_do_not_count_against_the_chat_limit(
    api_with_depth_limit_1: httpx.Client,
) -> None:
    api = api_with_depth_limit_1
    item = {
        "character": {"name": "Rachel"},
        "messages": [{"role": "user", "content": "Hi"}],
        "params": {"max_tokens": 2},
    }
    with worker_full(api):
        batch = api.post("/batches", json={"items": [item] * 3}).json()
        try:
            wait_until(
                lambda: api.get(f"/batches/{batch['id']}").json()["counts"],
                lambda counts: counts["pending"] == 3,
                what="three batch items waiting",
            )

            with connect_sse(
                api, "POST", "/Llama_stream", json={"input_data": "Hi", "max_tokens": 2}
            ) as chat:
                status = chat.response.status_code
        finally:
            api.post(f"/batches/{batch['id']}/cancel")

    assert status == 200
