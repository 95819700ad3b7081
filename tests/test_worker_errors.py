"""A failure inside the worker reaches the client as an `error` event and is stored, never a hang."""

import httpx
from bson import ObjectId

from tests.conftest import RACHEL
from tests.sse import post_stream


def test_prompt_longer_than_the_context_window_ends_in_an_error_event(api: httpx.Client, db) -> None:
    # ~8,000 characters of distinct words is more than the 2,048-token context of the embedded model.
    context = " ".join(f"fact{i} about Rachel's life number {i}." for i in range(230))[:8000]

    response, events = post_stream(api, "/Lumimaid_stream", {**RACHEL, "context": context, "max_tokens": 8})

    assert response.status_code == 200
    assert [event.event for event in events] == ["error"]
    assert events[0].data["code"] == "prompt_too_long"
    assert "context window" in events[0].data["message"]
    conversation_id = ObjectId(response.headers["X-Conversation-Id"])
    reply = db.messages.find_one({"conversation_id": conversation_id, "role": "assistant", "status": "error"})
    assert reply is not None and reply["content"] == ""
