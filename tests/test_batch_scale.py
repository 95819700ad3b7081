"""A batch of the documented maximum (BATCH_MAX_ITEMS, 10,000) is answered with its id, is read,
counted and cancelled while it is expanded and queued, and does not stop another user's chat; a
retried submission with the same Idempotency-Key answers with the batch it made."""

import uuid

import httpx

from tests.support.batches import dialogue_items
from tests.support.jobs import wait_until_ended
from tests.support.sse import post_stream
from tests.support.waiting import wait_until


def test_a_10000_item_batch_is_answered_read_and_cancelled_while_another_user_chats(
    api: httpx.Client, another_user: httpx.Client
) -> None:
    key = {"Idempotency-Key": f"nightly-{uuid.uuid4().hex}"}
    body = {"items": dialogue_items(10_000, max_tokens=1)}

    submitted = api.post("/batches", json=body, headers=key, timeout=120)
    chat, events = post_stream(another_user, "/Llama_stream", {"input_data": "Hi!", "max_tokens": 3})
    retried = api.post("/batches", json=body, headers=key, timeout=120)
    progress = api.get(f"/batches/{submitted.json()['id']}")
    cancelled = api.post(f"/batches/{submitted.json()['id']}/cancel")
    settled = wait_until(
        lambda: api.get(f"/batches/{submitted.json()['id']}").json(),
        lambda batch: batch["counts"]["running"] == 0,
        what="the cancelled batch's running items to stop",
    )

    assert submitted.status_code == 202 and submitted.json()["total"] == 10_000
    assert chat.status_code == 200 and events[-1].event == "done"
    assert wait_until_ended(another_user, chat.headers["X-Job-Id"])["state"] == "done"
    assert (retried.status_code, retried.json()["id"]) == (202, submitted.json()["id"])
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert progress.status_code == 200 and progress.json()["total"] == 10_000
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert settled["counts"]["pending"] == 0 and sum(settled["counts"].values()) == 10_000


def test_an_idempotency_key_is_the_users_own_and_must_be_visible_ascii(
    api: httpx.Client, another_user: httpx.Client, db
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"items": dialogue_items(1, max_tokens=1)}

    mine = api.post("/batches", json=body, headers=key)
    theirs = another_user.post("/batches", json=body, headers=key)
    bad = api.post("/batches", json=body, headers={"Idempotency-Key": "two words"})

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert (bad.status_code, bad.json()["error"]["fields"]) == (422, ["Idempotency-Key"])
    assert db.batches.count_documents({"idempotency_key": key["Idempotency-Key"]}) == 2
