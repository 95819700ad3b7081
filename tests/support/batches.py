"""Batch jobs as a client submits and reads them: a batch of short dialogue items, its progress until
it settles, and its results."""

import json
from datetime import datetime

import httpx

from tests.support.clients import RACHEL
from tests.support.waiting import wait_until

RACHEL_INLINE = {"name": "Rachel", "description": RACHEL["context"], "greeting": RACHEL["greeting"]}


def dialogue_items(count: int, max_tokens: int = 3) -> list[dict]:
    return [
        {
            "custom_id": f"item-{i}",
            "character": RACHEL_INLINE,
            "messages": [{"role": "user", "content": f"*I wave at Rachel, visitor number {i}.*"}],
            "params": {"max_tokens": max_tokens, "temperature": 0},
        }
        for i in range(count)
    ]


def submit(api: httpx.Client, items: list[dict]) -> dict:
    response = api.post("/batches", json={"items": items})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/batches/{response.json()['id']}"
    return response.json()


def wait_until_settled(api: httpx.Client, batch_id: str) -> dict:
    """The batch's progress once no item is pending or running."""
    return wait_until(
        lambda: api.get(f"/batches/{batch_id}").json(),
        lambda progress: progress["counts"]["pending"] + progress["counts"]["running"] == 0,
        what=f"batch {batch_id} to settle",
        every_s=0.2,
    )


def results(api: httpx.Client, batch_id: str) -> list[dict]:
    response = api.get(f"/batches/{batch_id}/results")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def started(result: dict) -> datetime | None:
    return datetime.fromisoformat(result["started_at"]) if result["started_at"] else None
