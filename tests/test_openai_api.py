"""The official openai SDK, unmodified, against /v1: models, streamed and whole chat completions,
a character as a model, sampling knobs, and errors in OpenAI's shape."""

from collections.abc import Iterator

import httpx
import openai
import pytest

from embedded.stack import EmbeddedStack
from tests.support.clients import RACHEL
from tests.support.sse import post_stream

HELLO = [{"role": "user", "content": "Say hello."}]
# A character with a long description, to see it in the prompt's token count.
QUILL = {
    **RACHEL,
    "character_name": "Quill",
    "context": "Quill is a lighthouse keeper on a windswept northern island. " * 8,
    "max_tokens": 1,
}


@pytest.fixture(scope="module")
def client(stack: EmbeddedStack, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stack.api_url + "/v1", api_key=api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def characters(api: httpx.Client) -> list[str]:
    """Store two characters the way the original route does."""
    for body in (RACHEL, QUILL):
        post_stream(api, "/Lumimaid_stream", {**body, "max_tokens": 1})
    return ["Rachel", "Quill"]


def test_models_list_gives_the_registry_models_and_the_stored_characters(
    client: openai.OpenAI, characters: list[str]
) -> None:
    models = {model.id: model for model in client.models.list()}

    assert {"lumimaid", "llama", "character:Rachel", "character:Quill"} <= set(models)
    assert models["character:Quill"].owned_by == "character" and models["character:Quill"].created > 0
    assert client.models.retrieve("character:Quill").id == "character:Quill"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_sdk_streams_a_chat_completion_ending_with_usage(client: openai.OpenAI, api: httpx.Client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="llama", messages=HELLO, max_tokens=12, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    pieces = [
        chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content
    ]
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert {chunk.id for chunk in chunks} == {f"chatcmpl-{raw.headers['X-Job-Id']}"}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(pieces) > 0
    assert "".join(pieces) == api.get(f"/jobs/{raw.headers['X-Job-Id']}").json()["text"]


def test_sdk_gets_a_whole_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="lumimaid",
        messages=[{"role": "system", "content": "You are terse."}, *HELLO],
        max_tokens=8,
        temperature=0.2,
        top_p=0.9,
        seed=7,
    )

    assert completion.object == "chat.completion" and completion.model == "lumimaid"
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 8 and completion.usage.prompt_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


@pytest.mark.parametrize("model", ["lumimaid", "llama"])  # llama.cpp, transformers
def test_a_stop_sequence_ends_the_reply_just_before_it(client: openai.OpenAI, model: str) -> None:
    def reply(**stop: list[str]) -> openai.types.chat.chat_completion.Choice:
        completion = client.chat.completions.create(
            model=model, messages=HELLO, max_tokens=48, temperature=0, **stop
        )
        return completion.choices[0]

    free = reply()
    words = free.message.content.split()
    assert len(words) > 3  # without a stop the model writes words
    stop = " " + words[2][:3]  # a stop string of several characters, likely spanning tokens
    stopped = reply(stop=[stop, "\u0000never"])

    assert stopped.finish_reason == "stop"
    assert stopped.message.content == free.message.content[: free.message.content.index(stop)]


def test_a_character_model_puts_the_characters_description_in_the_prompt(
    client: openai.OpenAI, characters: list[str]
) -> None:
    def prompt_tokens(model: str) -> int:
        completion = client.chat.completions.create(model=model, messages=HELLO, max_tokens=1)
        return completion.usage.prompt_tokens

    plain, rachel, quill = (
        prompt_tokens("lumimaid"),
        prompt_tokens("character:Rachel"),
        prompt_tokens("character:Quill"),
    )

    assert plain < rachel < quill
    assert quill - plain > 80  # Quill's description alone is ~90 tokens


def test_unknown_model_is_an_openai_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="character:Nobody", messages=HELLO)

    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error"
    assert "Nobody" in caught.value.body["message"]


def test_v1_errors_have_openai_shape_and_store_nothing(api: httpx.Client, db) -> None:
    before = db.messages.count_documents({})

    response = api.post("/v1/chat/completions", json={"model": "llama", "messages": HELLO, "temperature": 5})
    unknown_route = api.get("/v1/embeddings")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "validation_error",
        }
    }
    assert "temperature" in response.json()["error"]["message"]
    assert (
        unknown_route.status_code == 404 and unknown_route.json()["error"]["type"] == "invalid_request_error"
    )
    assert db.messages.count_documents({}) == before
    assert api.get("/no-such-route").json() == {"error": {"code": "not_found", "message": "Not Found"}}
