"""A chat job from HTTP to the resident model and back as SSE, stored in MongoDB."""

import httpx
from bson import ObjectId
from httpx_sse import connect_sse

from tests.support.clients import RACHEL
from tests.support.jobs import wait_for_reply
from tests.support.sse import StreamEvent, post_stream, streamed_text


def assert_well_formed_stream(events: list[StreamEvent]) -> None:
    assert [event.event for event in events[:-1]] == ["token"] * (len(events) - 1)
    assert events[-1].event == "done"
    assert [event.id for event in events] == [str(i) for i in range(len(events))]
    assert [event.data["index"] for event in events[:-1]] == list(range(len(events) - 1))


def test_lumimaid_stream_streams_tokens_then_done_and_stores_the_turns(api: httpx.Client, db) -> None:
    response, events = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 16, "temperature": 0})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(events) >= 2
    assert_well_formed_stream(events)
    text = streamed_text(events)
    assert text.strip()
    done = events[-1].data
    assert done["finish_reason"] in ("stop", "length")
    assert done["usage"]["completion_tokens"] == len(events) - 1

    conversation = db.conversations.find_one({"_id": ObjectId(response.headers["X-Conversation-Id"])})
    assert conversation["character_name"] == "Rachel"
    messages = list(
        db.messages.find({"conversation_id": conversation["_id"]}).sort([("created_at", 1), ("_id", 1)])
    )
    assert [(m["role"], m["content"]) for m in messages] == [
        ("assistant", RACHEL["greeting"]),
        ("user", RACHEL["input_data"]),
        ("assistant", text),
    ]
    assert str(messages[-1]["_id"]) == done["message_id"]
    assert messages[-1]["status"] == "complete"
    character = db.characters.find_one({"name": "Rachel"})
    assert character["description"] == RACHEL["context"]
    assert character["first_mes"] == RACHEL["greeting"]


def test_llama_stream_streams_an_assistant_answer(api: httpx.Client, db) -> None:
    body = {"input_data": "What is the capital of France?", "max_tokens": 12}
    response, events = post_stream(api, "/Llama_stream", body)

    assert response.status_code == 200
    assert_well_formed_stream(events)
    assert streamed_text(events).strip()
    reply = db.messages.find_one({"_id": ObjectId(events[-1].data["message_id"])})
    assert reply["content"] == streamed_text(events)
    assert db.conversations.find_one({"_id": reply["conversation_id"]})["model"] == "llama"


def test_no_token_is_lost_when_the_job_ends_before_the_client_reads(api: httpx.Client, db) -> None:
    """The API subscribes before it enqueues: a client that starts reading after the worker has
    finished still gets every token the worker produced."""
    body = {"input_data": "Count from one to five.", "max_tokens": 24, "temperature": 0}
    with connect_sse(api, "POST", "/Llama_stream", json=body) as source:
        assert source.response.status_code == 200
        job_id = source.response.headers["X-Job-Id"]
        reply_id = wait_for_reply(db, job_id)["_id"]  # the worker has stored it all, unread
        events = [sse for sse in source.iter_sse()]

    relayed = "".join(sse.json()["text"] for sse in events if sse.event == "token")
    stored = db.messages.find_one({"_id": reply_id})
    assert relayed == stored["content"]
    assert events[-1].event == "done"
    assert events[-1].json()["usage"]["completion_tokens"] == sum(sse.event == "token" for sse in events)


def test_text_plain_clients_get_the_bare_text(api: httpx.Client, db) -> None:
    response = api.post(
        "/Llama_stream", json={"input_data": "Say hello.", "max_tokens": 8}, headers={"Accept": "text/plain"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    stored = db.messages.find_one({"job_id": response.headers["X-Job-Id"], "role": "assistant"})
    assert response.text == stored["content"]
    assert response.text and "event:" not in response.text
