"""Text completion as its clients send it: SillyTavern's Text Completion body (taken from its source,
public/scripts/textgen-settings.js getTextGenGenerationData at its default settings) on
`/v1/completions` (its generic OpenAI-compatible type) and on llama-server's `/completion` (its
llama.cpp type), the openai SDK's `completions.create`, llama-server's `/tokenize`, `/detokenize`,
`/props`; and `max_tokens` past the context window refused on every completion route."""

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from tests.support.sse import iter_events

# A prompt in Gemma's own turn markup, as SillyTavern's instruct template writes it.
PROMPT = "<start_of_turn>user\nName three colours.<end_of_turn>\n<start_of_turn>model\n"

# What SillyTavern 1.12's getTextGenGenerationData sends with its default settings, whatever the type
# (its server forwards the body as it is); `api_type` "ooba" is the "Default [OpenAI /completions
# compatible]" type.
SILLYTAVERN_BODY = {
    "prompt": PROMPT,
    "max_new_tokens": 24,
    "max_tokens": 24,
    "temperature": 0,
    "top_p": 0.5,
    "typical_p": 1,
    "typical": 1,
    "sampler_seed": -1,
    "min_p": 0,
    "repetition_penalty": 1.2,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "top_k": 40,
    "skew": 0,
    "min_length": 0,
    "min_tokens": 0,
    "num_beams": 1,
    "length_penalty": 1,
    "early_stopping": False,
    "add_bos_token": True,
    "smoothing_factor": 0,
    "smoothing_curve": 1,
    "dry_allowed_length": 2,
    "dry_multiplier": 0,
    "dry_base": 1.75,
    "dry_sequence_breakers": '["\\n", ":", "\\"", "*"]',
    "dry_penalty_last_n": 0,
    "max_tokens_second": 0,
    "sampler_priority": ["temperature", "top_k", "top_p", "min_p"],
    "stopping_strings": [],
    "stop": [],
    "truncation_length": 2048,
    "ban_eos_token": False,
    "skip_special_tokens": True,
    "top_a": 0,
    "tfs": 1,
    "epsilon_cutoff": 0,
    "eta_cutoff": 0,
    "mirostat_mode": 0,
    "mirostat_tau": 5,
    "mirostat_eta": 0.1,
    "custom_token_bans": "",
    "banned_strings": [],
    "api_type": "ooba",
    "api_server": "http://127.0.0.1:8000",
    "legacy_api": False,
    "xtc_threshold": 0.1,
    "xtc_probability": 0,
    "rep_pen": 1.2,
    "rep_pen_range": 0,
    "repetition_penalty_range": 0,
    "encoder_repetition_penalty": 1,
    "no_repeat_ngram_size": 0,
    "penalty_alpha": 0,
    "temperature_last": True,
    "do_sample": True,
    "seed": -1,
    "guidance_scale": 1,
    "negative_prompt": "",
    "grammar_string": "",
    "repeat_penalty": 1.2,
    "tfs_z": 1,
    "repeat_last_n": 0,
    "n_predict": 24,
    "num_predict": 24,
    "num_ctx": 2048,
    "mirostat": 0,
    "ignore_eos": False,
    "rep_pen_slope": 1,
    "stream": True,
}
# The llama.cpp type adds these (and sends `samplers` instead of `sampler_priority`).
LLAMACPP_BODY = {
    **{key: value for key, value in SILLYTAVERN_BODY.items() if key != "sampler_priority"},
    "api_type": "llamacpp",
    "samplers": ["top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature"],
    "logit_bias": [],
    "grammar": "",
    "cache_prompt": True,
}


def sse_lines(client: httpx.Client, path: str, body: dict) -> tuple[httpx.Response, list[str]]:
    with connect_sse(client, "POST", path, json=body) as source:
        response = source.response
        if response.status_code != 200:
            response.read()
            return response, []
        return response, [sse.data for sse in iter_events(source)]


@pytest.fixture(scope="module")
def sdk(stack: EmbeddedStack, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stack.api_url + "/v1", api_key=api_key, max_retries=0) as client:
        yield client


def test_sillytavern_generic_type_streams_a_completion_the_job_log_keeps(api: httpx.Client) -> None:
    response, lines = sse_lines(api, "/v1/completions", SILLYTAVERN_BODY)

    assert response.status_code == 200, response.text
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    text = "".join(chunk["choices"][0]["text"] for chunk in chunks)
    assert text.strip()
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    # The same job path as a chat: its log holds the reply, for its owner (resume, GET /jobs/{id}).
    assert api.get(f"/jobs/{response.headers['X-Job-Id']}").json()["text"] == text


def test_sillytavern_stop_strings_end_the_reply_before_them(api: httpx.Client) -> None:
    whole = api.post("/v1/completions", json={**SILLYTAVERN_BODY, "stream": False}).json()
    text = whole["choices"][0]["text"]
    stop = text.strip()[len(text.strip()) // 2 :][:3]
    assert stop.strip(), f"no text to stop on: {text!r}"

    stopped = api.post(
        "/v1/completions",
        json={**SILLYTAVERN_BODY, "stream": False, "stopping_strings": [stop], "stop": [stop]},
    ).json()

    assert stopped["choices"][0]["text"] == text[: text.index(stop)]
    assert stopped["choices"][0]["finish_reason"] == "stop"


def test_sillytavern_llamacpp_type_streams_content_chunks_ending_with_stop(api: httpx.Client) -> None:
    response, lines = sse_lines(api, "/completion", LLAMACPP_BODY)

    assert response.status_code == 200, response.text
    chunks = [json.loads(line) for line in lines]
    assert [chunk["stop"] for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    text = "".join(chunk["content"] for chunk in chunks)
    assert text.strip()
    assert chunks[-1]["stop_type"] in ("eos", "limit") and chunks[-1]["tokens_predicted"] == len(chunks) - 1
    whole = api.post("/completion", json={**LLAMACPP_BODY, "stream": False}).json()
    assert whole["content"] == text and whole["stop"] is True  # greedy: the same reply


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/completions", "typical_p", 0.9),
        ("/v1/completions", "mirostat_mode", 2),
        ("/completion", "dry_multiplier", 0.8),
        ("/completion", "banned_strings", ["red"]),
    ],
)
def test_a_sampler_this_server_lacks_is_refused_by_name(
    api: httpx.Client, path: str, field: str, value
) -> None:
    response, _ = sse_lines(api, path, {**LLAMACPP_BODY, field: value})

    assert response.status_code == 400
    assert field in response.json()["error"]["message"]  # SillyTavern shows error.message


@pytest.mark.parametrize(("field", "value"), [("echo", True), ("suffix", "THE END"), ("best_of", 3)])
def test_openai_fields_this_server_lacks_are_refused_by_name(sdk: openai.OpenAI, field: str, value) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.completions.create(model="lumimaid", prompt=PROMPT, max_tokens=4, **{field: value})

    assert refused.value.body["param"] == field and field in refused.value.body["message"]


def test_sdk_completions_whole_with_several_prompts_and_logprobs(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(
        model="lumimaid", prompt=[PROMPT, "The sky is"], max_tokens=6, temperature=0, n=2, logprobs=2
    )

    assert completion.object == "text_completion" and len(completion.choices) == 4
    assert [choice.index for choice in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[0].text == completion.choices[1].text  # greedy: both choices of a prompt
    for choice in completion.choices:
        assert "".join(choice.logprobs.tokens) == choice.text
        lists = (choice.logprobs.token_logprobs, choice.logprobs.top_logprobs, choice.logprobs.text_offset)
        assert {len(values) for values in lists} == {len(choice.logprobs.tokens)}
        assert all(len(top) <= 2 for top in choice.logprobs.top_logprobs)
        assert choice.logprobs.text_offset[0] == 0
    assert completion.usage.completion_tokens == sum(
        len(choice.logprobs.tokens) for choice in completion.choices
    )


def test_sdk_completions_streamed_end_with_usage(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.completions.create(
            model="llama",
            prompt="Once upon a time",
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_a_raw_prompt_gets_no_chat_template(api: httpx.Client) -> None:
    """The prompt's own markup is read as control tokens: counted as /tokenize counts it with the BOS."""
    tokens = api.post("/tokenize", json={"content": PROMPT, "add_special": True}).json()["tokens"]
    whole = api.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 1}).json()

    assert whole["model"] == "lumimaid"  # the server's default model, as SillyTavern sends none
    assert whole["usage"]["prompt_tokens"] == len(tokens)
    pieces = api.post("/tokenize", json={"content": PROMPT, "with_pieces": True}).json()["tokens"]
    assert pieces[0]["piece"] == "<start_of_turn>"  # one control token, not its characters
    assert api.post("/detokenize", json={"tokens": tokens[1:]}).json()["content"] == PROMPT


def test_props_give_the_context_window_and_a_bad_token_id_is_refused(api: httpx.Client) -> None:
    props = api.get("/props").json()

    assert props["default_generation_settings"]["n_ctx"] == 2048 and props["total_slots"] >= 1
    refused = api.post("/detokenize", json={"tokens": [10**9]})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": PROMPT, "max_tokens": 4096}),
        ("/completion", {"prompt": PROMPT, "n_predict": 4096}),
        (
            "/v1/chat/completions",
            {"model": "lumimaid", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4096},
        ),
    ],
)
def test_max_tokens_past_the_context_window_is_refused_naming_it(
    api: httpx.Client, path: str, body: dict
) -> None:
    refused = api.post(path, json=body)

    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "4096" in message and "2048" in message


def test_another_user_cannot_read_a_text_completion_job(
    api: httpx.Client, another_user: httpx.Client
) -> None:
    done = api.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 2})

    assert another_user.get(f"/jobs/{done.headers['X-Job-Id']}").status_code == 404
    assert api.get(f"/jobs/{done.headers['X-Job-Id']}").status_code == 200
