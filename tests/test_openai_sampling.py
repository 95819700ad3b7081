"""The sampling surface of /v1/chat/completions through the official openai SDK, on the real stack:
several choices (`n`), logprobs, penalties, logit bias, JSON replies constrained by a llama.cpp
grammar, and request fields this server does not implement refused by name."""

import json
from collections.abc import Iterator

import httpx
import jsonschema
import openai
import pytest

from embedded.stack import EmbeddedStack
from runtimes.llama_cpp import LlamaCppRuntime

RUNTIMES = ["lumimaid", "llama"]  # llama.cpp, transformers
HELLO = [{"role": "user", "content": "Say hello."}]
REPETITIVE = [{"role": "user", "content": "Write the word cat ten times: cat cat cat cat cat"}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture(scope="module")
def client(stack: EmbeddedStack, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stack.api_url + "/v1", api_key=api_key, max_retries=0) as sdk:
        yield sdk


def greedy(client: openai.OpenAI, model: str, messages: list[dict] = HELLO, **params):
    return client.chat.completions.create(model=model, messages=messages, temperature=0, seed=1, **params)


@pytest.mark.parametrize("model", RUNTIMES)
def test_n_gives_several_choices_and_usage_counts_them_all(client: openai.OpenAI, model: str) -> None:
    completion = client.chat.completions.create(
        model=model, messages=HELLO, n=2, max_tokens=6, temperature=1.0, seed=3, logprobs=True
    )

    assert [choice.index for choice in completion.choices] == [0, 1]
    assert all(choice.message.content for choice in completion.choices)
    assert completion.choices[0].message.content != completion.choices[1].message.content  # seed + i
    tokens = [len(choice.logprobs.content) for choice in completion.choices]
    assert completion.usage.completion_tokens == sum(tokens)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + sum(tokens)


def test_n_streams_every_choice_to_its_end(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="lumimaid",
            messages=HELLO,
            n=2,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    texts = {0: "", 1: ""}
    finished = set()
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1} and all(texts.values())
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", RUNTIMES)
def test_logprobs_are_the_models_distribution_and_greedy_picks_the_top_one(
    client: openai.OpenAI, model: str
) -> None:
    completion = greedy(client, model, max_tokens=8, logprobs=True, top_logprobs=5)

    (choice,) = completion.choices
    entries = choice.logprobs.content
    assert len(entries) == completion.usage.completion_tokens > 0
    for entry in entries:
        tops = [top.logprob for top in entry.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert all(logprob <= 0 for logprob in tops)
        assert entry.token == entry.top_logprobs[0].token
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)
        assert bytes(entry.bytes).decode("utf-8", errors="replace") == entry.token
    assert "".join(entry.token for entry in entries) == choice.message.content


def test_streamed_logprobs_match_the_whole_replys(client: openai.OpenAI) -> None:
    whole = greedy(client, "lumimaid", max_tokens=8, logprobs=True, top_logprobs=2)
    chunks = list(greedy(client, "lumimaid", max_tokens=8, logprobs=True, top_logprobs=2, stream=True))

    streamed = [
        entry
        for chunk in chunks
        if chunk.choices and chunk.choices[0].logprobs
        for entry in chunk.choices[0].logprobs.content
    ]
    assert [(entry.token, round(entry.logprob, 4)) for entry in streamed] == [
        (entry.token, round(entry.logprob, 4)) for entry in whole.choices[0].logprobs.content
    ]


@pytest.mark.parametrize("model", RUNTIMES)
def test_a_frequency_penalty_changes_a_repetitive_reply(client: openai.OpenAI, model: str) -> None:
    plain = greedy(client, model, REPETITIVE, max_tokens=16).choices[0].message.content
    penalised = (
        greedy(client, model, REPETITIVE, max_tokens=16, frequency_penalty=2.0).choices[0].message.content
    )

    assert plain.lower().count("cat") > penalised.lower().count("cat")


@pytest.mark.parametrize("model", RUNTIMES)
def test_logit_bias_bans_and_forces_tokens(client: openai.OpenAI, gemma: LlamaCppRuntime, model: str) -> None:
    first = greedy(client, model, max_tokens=4, logprobs=True).choices[0].logprobs.content[0]
    (first_id,) = gemma.text_tokens(bytes(first.bytes).decode())
    (banana,) = gemma.text_tokens(" banana")

    banned = greedy(client, model, max_tokens=4, logprobs=True, logit_bias={str(first_id): -100})
    forced = greedy(client, model, max_tokens=3, logit_bias={str(banana): 100})

    assert banned.choices[0].logprobs.content[0].token != first.token
    assert forced.choices[0].message.content == " banana" * 3


def test_a_json_schema_reply_parses_and_validates(client: openai.OpenAI) -> None:
    completion = greedy(
        client,
        "lumimaid",
        [{"role": "user", "content": "Describe a person as JSON."}],
        max_tokens=64,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},
    )

    (choice,) = completion.choices
    assert choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content), PERSON)


def test_a_json_object_reply_parses(client: openai.OpenAI) -> None:
    completion = greedy(
        client,
        "lumimaid",
        [
            {
                "role": "user",
                "content": 'Give me a JSON object with a single key "color" whose value is a colour.',
            }
        ],
        max_tokens=64,
        response_format={"type": "json_object"},
    )

    (choice,) = completion.choices
    assert choice.finish_reason == "stop"
    assert isinstance(json.loads(choice.message.content), dict)


def test_response_format_is_refused_where_there_is_no_grammar(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as on_transformers:
        greedy(client, "llama", max_tokens=4, response_format={"type": "json_object"})
    with pytest.raises(openai.BadRequestError) as bad_schema:
        greedy(
            client,
            "lumimaid",
            max_tokens=4,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frob"}}},
        )

    assert on_transformers.value.body["code"] == "unsupported"
    assert on_transformers.value.body["param"] == "response_format"
    assert (
        bad_schema.value.body["code"] == "invalid_json_schema" and "frob" in bad_schema.value.body["message"]
    )


@pytest.mark.parametrize("model", RUNTIMES)
def test_a_logit_bias_token_outside_the_vocabulary_is_400(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        greedy(client, model, max_tokens=4, logit_bias={"999999999": 5})

    assert caught.value.body["code"] == "invalid_sampling" and "999999999" in caught.value.body["message"]


def test_unimplemented_fields_are_refused_by_name(client: openai.OpenAI, api: httpx.Client, db) -> None:
    before = db.messages.count_documents({})
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(model="lumimaid", messages=HELLO, tools=[tool])
    several = api.post(
        "/v1/chat/completions",
        json={"model": "lumimaid", "messages": HELLO, "modalities": ["audio"], "audio": {}, "user": "u"},
    )

    assert tools.value.status_code == 400 and tools.value.body["param"] == "tools"
    assert "tools" in tools.value.body["message"]
    assert several.status_code == 400
    assert (
        "audio" in several.json()["error"]["message"] and "modalities" in several.json()["error"]["message"]
    )
    assert "user" not in several.json()["error"]["message"]
    assert db.messages.count_documents({}) == before


def test_sillytaverns_extra_samplers_are_honoured(client: openai.OpenAI) -> None:
    """top_k 1 leaves one candidate a step: at temperature 1 two seeds then write the same text,
    where without it they write two (the control: this prompt leaves sampling room)."""
    story = [{"role": "user", "content": "Tell me a story about a fox."}]

    def texts(extra: dict) -> set[str]:
        return {
            client.chat.completions.create(
                model="lumimaid", messages=story, temperature=1.0, top_p=1.0, seed=seed, max_tokens=24,
                extra_body={"min_p": 0.0, "repetition_penalty": 1.0, **extra},
            ).choices[0].message.content
            for seed in (1, 2)
        }  # fmt: skip

    assert len(texts({"top_k": 1})) == 1
    assert len(texts({"top_k": 0})) == 2
