"""A prompt that cannot fit the model's context window is answered at once, never a hang: the API
counts it with the model's vocabulary and refuses it before anything is stored or enqueued (the worker
would refuse it too, but only after the job had waited its turn)."""

import uuid

import httpx

from tests.support.clients import RACHEL


def test_prompt_longer_than_the_context_window_is_refused_before_anything_is_stored(
    api: httpx.Client, db
) -> None:
    # ~8,000 characters of distinct words is more than the 2,048-token context of the embedded model.
    context = " ".join(f"fact{i} about Rachel's life number {i}." for i in range(230))[:8000]
    said = f"Do you remember? {uuid.uuid4().hex}"

    response = api.post(
        "/Lumimaid_stream", json={**RACHEL, "input_data": said, "context": context, "max_tokens": 8}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "prompt_too_long"
    assert "nothing was enqueued" in response.json()["error"]["message"]
    assert "X-Job-Id" not in response.headers
    assert db.messages.count_documents({"content": said}) == 0
