"""Batch jobs through the whole stack: submitted over HTTP, run by the real worker below interactive
chats, results kept in MongoDB, cancellable; and the CLI that drives them."""

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from model_registry import get_registry
from settings import get_settings
from tests.support.batches import RACHEL_INLINE, dialogue_items, results, started, submit, wait_until_settled
from tests.support.clients import RACHEL, bearer, new_user_key
from tests.support.jobs import job_status
from tests.support.sse import iter_events
from tests.support.waiting import wait_until


def test_batch_of_20_items_completes_with_20_results(api: httpx.Client, db) -> None:
    batch = submit(api, dialogue_items(20))

    progress = wait_until_settled(api, batch["id"])
    lines = results(api, batch["id"])

    assert batch["total"] == 20 and batch["state"] in ("queued", "running")
    assert progress["state"] == "completed"
    assert progress["counts"] == {"pending": 0, "running": 0, "complete": 20, "cancelled": 0, "error": 0}
    assert [line["custom_id"] for line in lines] == [f"item-{i}" for i in range(20)]
    for line in lines:
        assert line["state"] == "complete"
        assert line["finish_reason"] in ("stop", "length")
        assert 1 <= line["usage"]["completion_tokens"] <= 3
        assert line["text"]
        assert started(line) <= datetime.fromisoformat(line["finished_at"])
        stored = db.batch_items.find_one({"_id": line["job_id"]})
        assert stored["state"] == "complete" and stored["text"] == line["text"]


def test_jsonl_batch_can_name_a_stored_character(api: httpx.Client, db) -> None:
    name = f"Bard {uuid.uuid4().hex[:6]}"
    created = api.post(
        "/characters",
        json={"name": name, "description": "A travelling bard who sings.", "first_mes": "Hail!"},
    )
    assert created.status_code == 201
    item = {
        "character": name,
        "messages": [{"role": "user", "content": "Sing."}],
        "params": {"max_tokens": 2},
    }
    body = "\n".join(json.dumps({**item, "custom_id": f"song-{i}"}) for i in range(2)) + "\n"

    response = api.post("/batches", content=body, headers={"Content-Type": "application/x-ndjson"})
    wait_until_settled(api, response.json()["id"])
    lines = results(api, response.json()["id"])

    assert response.status_code == 202
    assert [(line["custom_id"], line["state"]) for line in lines] == [
        ("song-0", "complete"),
        ("song-1", "complete"),
    ]
    job = db.batch_items.find_one({"_id": lines[0]["job_id"]})["job"]
    assert [m["role"] for m in job["messages"]] == ["system", "assistant", "user"]
    assert "A travelling bard who sings." in job["messages"][0]["content"]
    assert job["messages"][1]["content"] == "Hail!"


def hold_the_worker(api: httpx.Client) -> list[str]:
    """Detached chats far longer than any test, one in each slot of the only worker's engine; their
    job ids (DELETE them)."""
    held = []
    for _ in range(get_registry()["lumimaid"].max_sequences):
        body = {**RACHEL, "max_tokens": 1500, "detach": True}
        with connect_sse(api, "POST", "/Lumimaid_stream", json=body) as source:
            assert next(iter_events(source)).event == "token"
            held.append(source.response.headers["X-Job-Id"])
    return held


def test_interactive_chat_starts_before_the_remaining_batch_items(api: httpx.Client) -> None:
    held = hold_the_worker(api)
    batch = submit(api, dialogue_items(20))
    # The same key's chat, on the same model: its key holds every slot already, so it waits its turn.
    with connect_sse(api, "POST", "/Lumimaid_stream", json={**RACHEL, "max_tokens": 8}) as source:
        assert source.response.status_code == 200
        chat_id = source.response.headers["X-Job-Id"]
        pending_before = api.get(f"/batches/{batch['id']}").json()["counts"]["pending"]
        queued = job_status(api, chat_id)["state"]
        for job_id in held:  # the worker's slots free up: the chat and the whole batch wait for them
            api.delete(f"/jobs/{job_id}")
        events = [event.event for event in iter_events(source)]

    wait_until_settled(api, batch["id"])
    chat_started = datetime.fromisoformat(job_status(api, chat_id)["timings"]["started_at"])
    starts = [started(line) for line in results(api, batch["id"])]

    assert pending_before == 20 and queued == "queued"
    assert events[0] == "token" and events[-1] == "done"
    # Items the worker held waiting for room when the slots freed (its WORKER_WAITING_JOBS threads)
    # may start alongside the chat; all others after it.
    waiting_jobs = get_settings().worker_waiting_jobs
    assert len([moment for moment in starts if moment < chat_started]) <= waiting_jobs
    assert len([moment for moment in starts if moment > chat_started]) >= 20 - waiting_jobs


def test_cancelling_a_batch_stops_its_pending_and_running_items(api: httpx.Client, broker) -> None:
    slots = get_registry()["lumimaid"].max_sequences  # items the worker runs at once
    batch = submit(api, dialogue_items(slots + 4, max_tokens=1000))
    wait_until(
        lambda: api.get(f"/batches/{batch['id']}").json()["counts"],
        lambda counts: counts["running"] >= 1,
        what="an item to start",
    )

    response = api.post(f"/batches/{batch['id']}/cancel")
    progress = wait_until_settled(api, batch["id"])
    # The worker pops the cancelled items' messages and skips them without running them.
    wait_until(lambda: broker.llen("cpu:9"), lambda length: length == 0, what="the batch queue to empty")
    lines = results(api, batch["id"])

    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["counts"]["pending"] == 0
    assert progress["state"] == "cancelled"
    was_running = [line for line in lines if line["started_at"]]
    assert 1 <= len(was_running) <= slots
    for line in was_running:
        assert line["state"] == "cancelled"
        assert line["finish_reason"] == "cancelled"
        assert line["usage"]["completion_tokens"] < 1000
    never_ran = [line for line in lines if not line["started_at"]]
    assert len(never_ran) >= 4
    assert {line["state"] for line in never_ran} == {"cancelled"}


def test_a_failing_item_keeps_its_error_and_the_others_complete(api: httpx.Client) -> None:
    # The card's description and the last turn are kept whole (only older turns are trimmed to fit),
    # and together they are past n_ctx 2048.
    too_long = dialogue_items(1)[0] | {
        "custom_id": "too-long",
        "character": RACHEL_INLINE | {"description": "word " * 1500},
        "messages": [{"role": "user", "content": "word " * 1500}],
    }
    batch = submit(api, [too_long, *dialogue_items(1)])

    progress = wait_until_settled(api, batch["id"])
    failed, fine = results(api, batch["id"])

    assert progress["state"] == "completed"
    assert progress["counts"]["error"] == 1 and progress["counts"]["complete"] == 1
    assert failed["custom_id"] == "too-long" and failed["state"] == "error"
    assert failed["error"]["code"] == "prompt_too_long"
    assert "context window" in failed["error"]["message"]
    assert fine["state"] == "complete"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ({"items": []}, "application/json", 422, "items"),
        ({"items": [{"character": "Nobody Stored", "messages": [{"role": "user", "content": "Hi"}]}]},
         "application/json", 422, "items.0.character"),
        ({"items": [{"character": RACHEL_INLINE, "messages": [{"role": "assistant", "content": "Hi"}]}]},
         "application/json", 422, "items.0.messages"),
        ({"items": [{"character": RACHEL_INLINE, "model": "gpt-9", "messages": [{"role": "user", "content": "Hi"}]}]},
         "application/json", 422, "items.0.model"),
        ('{"character": "x", "messages": [{"role": "user", "content": "Hi"}]}\n{not json}\n',
         "application/x-ndjson", 422, "line 2"),
        ("character,messages\n", "text/csv", 415, None),
    ],
    ids=["no-items", "unknown-character", "ends-with-assistant", "unknown-model", "bad-jsonl-line", "csv"],
)  # fmt: skip
def test_a_bad_batch_is_refused_naming_the_problem_and_nothing_is_stored(
    api: httpx.Client, db, body, content_type: str, status: int, field: str | None
) -> None:
    batches_before = db.batches.count_documents({})
    content = body if isinstance(body, str) else json.dumps(body)

    response = api.post("/batches", content=content, headers={"Content-Type": content_type})

    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert any(name.startswith(field) for name in error["fields"]), error
    assert db.batches.count_documents({}) == batches_before


def test_a_batch_is_visible_to_its_owner_only(api: httpx.Client, another_user: httpx.Client) -> None:
    batch = submit(api, dialogue_items(1, max_tokens=2))

    assert another_user.get(f"/batches/{batch['id']}").status_code == 404
    assert api.get("/batches/not-an-id").status_code == 404
    assert api.get(f"/batches/{batch['id']}").status_code == 200
    wait_until_settled(api, batch["id"])


def test_a_user_lists_their_own_batches_newest_first_in_pages(
    stack: EmbeddedStack, another_user: httpx.Client
) -> None:
    with httpx.Client(
        base_url=stack.api_url, timeout=120, headers=bearer(new_user_key(stack.api_url))
    ) as owner:
        ids = [submit(owner, dialogue_items(1, max_tokens=1))["id"] for _ in range(3)]

        first = owner.get("/batches", params={"page_size": 2}).json()
        second = owner.get("/batches", params={"page_size": 2, "page": 2}).json()

        assert first["total"] == second["total"] == 3
        assert [batch["id"] for batch in first["items"] + second["items"]] == ids[::-1]
        assert {"state", "total", "counts"} <= set(first["items"][0])
        assert ids[0] not in {batch["id"] for batch in another_user.get("/batches").json()["items"]}
        assert owner.get("/batches", params={"page_size": 1000}).status_code == 422
        for batch_id in ids:
            wait_until_settled(owner, batch_id)


def test_cli_submits_a_file_and_writes_the_results(
    stack: EmbeddedStack, api_key: str, tmp_path: Path
) -> None:
    source = tmp_path / "dialogues.jsonl"
    source.write_text("".join(json.dumps(item) + "\n" for item in dialogue_items(3, max_tokens=2)))
    out = tmp_path / "results.jsonl"

    run = subprocess.run(
        [sys.executable, "-m", "cli", "batch", "submit", str(source), "--api", stack.api_url,
         "--out", str(out), "--poll-s", "0.2"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "CHATBOT_API_KEY": api_key},
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["custom_id"], line["state"]) for line in lines] == [
        ("item-0", "complete"),
        ("item-1", "complete"),
        ("item-2", "complete"),
    ]
    assert "3 results" in run.stderr
