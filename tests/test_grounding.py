"""`google_access: true` grounds the answer in passages retrieved from the imported datasets."""

import httpx

from tests.support.samples import QUESTION, SAMPLE
from tests.support.sse import post_stream


def test_grounded_question_gets_the_passage_in_prompt_and_sources(api: httpx.Client, admin_headers) -> None:
    imported = api.post("/datasets/grounding_sample", content=SAMPLE.read_bytes(), headers=admin_headers)
    body = {"input_data": QUESTION, "max_tokens": 4, "temperature": 0}

    _, plain = post_stream(api, "/Llama_stream", body)
    _, grounded = post_stream(api, "/Llama_stream", {**body, "google_access": True})

    assert imported.status_code == 201
    assert plain[-1].data["sources"] == []
    sources = grounded[-1].data["sources"]
    stored = {d["name"] for d in api.get("/datasets", headers=admin_headers).json()["datasets"]}
    assert sources[0]["dataset"] in stored
    assert sources[0]["row"] == 23
    assert "은하시" in sources[0]["title"]
    # The passages are in the prompt: it is longer by at least the answer's text.
    assert grounded[-1].data["usage"]["prompt_tokens"] > plain[-1].data["usage"]["prompt_tokens"] + 20


def test_a_grounded_turn_of_a_stored_conversation_gets_sources_and_keeps_the_history(
    api: httpx.Client, admin_headers
) -> None:
    api.post("/datasets/grounding_sample", content=SAMPLE.read_bytes(), headers=admin_headers)
    opening, first = post_stream(api, "/Llama_stream", {"input_data": "안녕", "max_tokens": 4})
    conversation_id = opening.headers["X-Conversation-Id"]
    turn = {"input_data": QUESTION, "max_tokens": 4, "temperature": 0, "conversation_id": conversation_id}

    _, plain = post_stream(api, "/Llama_stream", turn)
    _, grounded = post_stream(api, "/Llama_stream", {**turn, "google_access": True})
    stored = api.get(f"/conversations/{conversation_id}").json()

    assert grounded[-1].data["sources"][0]["row"] == 23
    assert grounded[-1].data["usage"]["prompt_tokens"] > plain[-1].data["usage"]["prompt_tokens"] + 20
    # Both turns went into the same conversation, the first exchange in their prompts.
    assert plain[-1].data["usage"]["prompt_tokens"] > first[-1].data["usage"]["prompt_tokens"]
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == ["안녕", QUESTION, QUESTION]
