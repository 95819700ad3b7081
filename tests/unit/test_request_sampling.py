"""Every request shape's sampling, pinned without a server: what a job samples with when the request
leaves every knob out, and when it sets each one. A default that drifts (in schemas/sampling.py, a
request schema or the settings) fails here, as does a field that stops reaching the job."""

import pytest

from api.http.errors import ApiError
from api.turns.sampling import chat_sampling, choice_samplings, request_sampling
from model_registry import ModelSpec
from schemas.batches import BatchItemRequest
from schemas.chat import GenerationParams, LlamaRequest, LumimaidRequest
from schemas.conversations import TurnRequest
from schemas.openai import ChatCompletionRequest
from schemas.text_completion import CompletionRequest
from settings import Settings
from tests.support.clients import RACHEL

SETTINGS = Settings(_env_file=None)
LLAMA_CPP = ModelSpec(name="lumimaid", runtime="llama_cpp", weights="unused.gguf")
TRANSFORMERS = ModelSpec(name="llama", runtime="transformers", weights="unused")

# What every route samples with where the request says nothing (max_tokens: DEFAULT_MAX_TOKENS).
DEFAULT = {
    "max_tokens": 512,
    "temperature": 0.7,
    "top_p": 0.95,
    "seed": None,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "logit_bias": {},
    "stop": [],
    "logprobs": None,
    "grammar": None,
}
CHAT_KNOBS = {"max_tokens": 64, "temperature": 0.3, "top_p": 0.5, "seed": 11}
OPENAI_KNOBS = {
    **CHAT_KNOBS,
    "stop": ["\n"],
    "top_k": 5,
    "min_p": 0.1,
    "repetition_penalty": 1.2,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "logit_bias": {"7": -100},
}
OPENAI_SAMPLED = {
    **DEFAULT,
    **CHAT_KNOBS,
    "stop": ["\n"],
    "top_k": 5,
    "min_p": 0.1,
    "repeat_penalty": 1.2,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "logit_bias": {7: -100.0},
}
HELLO = [{"role": "user", "content": "hi"}]


def chat_route_sampling(params: GenerationParams) -> dict:
    """As api/streams/chat_stream.py makes the job of every chat route, swipes and continues included."""
    return chat_sampling(params, SETTINGS).model_dump()


def openai_sampling(body, spec: ModelSpec = LLAMA_CPP) -> list[dict]:
    """As /v1/chat/completions, /v1/completions and /completion make their jobs' sampling, one per choice."""
    choices = choice_samplings(request_sampling(body, spec, SETTINGS), body.n)
    return [choice.model_dump() for choice in choices]


@pytest.mark.parametrize(
    "params",
    [
        LumimaidRequest.model_validate(RACHEL),
        LlamaRequest(input_data="hi"),
        TurnRequest(input_data="hi"),
        GenerationParams(),  # regenerate and continue without a body
        BatchItemRequest.model_validate({"character": "Rachel", "messages": HELLO}).params,
    ],
    ids=["lumimaid", "llama", "turn", "regenerate-continue", "batch-item"],
)
def test_a_chat_request_without_knobs_samples_with_the_defaults(params: GenerationParams) -> None:
    assert chat_route_sampling(params) == DEFAULT


@pytest.mark.parametrize(
    "params",
    [
        LumimaidRequest.model_validate({**RACHEL, **CHAT_KNOBS}),
        LlamaRequest(input_data="hi", **CHAT_KNOBS),
        TurnRequest(input_data="hi", **CHAT_KNOBS),
        GenerationParams(**CHAT_KNOBS),
        BatchItemRequest.model_validate(
            {"character": "Rachel", "messages": HELLO, "params": CHAT_KNOBS}
        ).params,
    ],
    ids=["lumimaid", "llama", "turn", "regenerate-continue", "batch-item"],
)
def test_a_chat_request_s_knobs_reach_the_job(params: GenerationParams) -> None:
    assert chat_route_sampling(params) == {**DEFAULT, **CHAT_KNOBS}


def test_openai_requests_without_knobs_sample_with_our_defaults_not_openai_s() -> None:
    chat = ChatCompletionRequest(model="lumimaid", messages=HELLO)
    text = CompletionRequest.model_validate({"prompt": "Once"})

    assert openai_sampling(chat) == openai_sampling(text) == [DEFAULT]


def test_an_explicit_null_is_the_default() -> None:
    nulls = dict.fromkeys(OPENAI_KNOBS, None)
    chat = ChatCompletionRequest.model_validate({"model": "lumimaid", "messages": HELLO, **nulls})
    text = CompletionRequest.model_validate({"prompt": "Once", **nulls})

    assert openai_sampling(chat) == openai_sampling(text) == [DEFAULT]


def test_every_openai_chat_knob_reaches_each_choice_with_its_own_seed() -> None:
    body = ChatCompletionRequest.model_validate(
        {
            "model": "lumimaid",
            "messages": HELLO,
            **OPENAI_KNOBS,
            "max_tokens": 32,
            "max_completion_tokens": 64,  # wins
            "n": 2,
            "logprobs": True,
            "top_logprobs": 3,
            "response_format": {"type": "json_object"},
        }
    )

    [first, second] = openai_sampling(body)

    assert first == {**OPENAI_SAMPLED, "logprobs": 3, "grammar": first["grammar"]}
    assert "root" in first["grammar"]
    assert second == {**first, "seed": 12}


def test_a_json_reply_on_a_transformers_model_is_refused() -> None:
    body = ChatCompletionRequest(model="llama", messages=HELLO, response_format={"type": "json_object"})

    with pytest.raises(ApiError) as refused:
        request_sampling(body, TRANSFORMERS, SETTINGS)

    assert refused.value.code == "unsupported"


def test_every_openai_text_knob_reaches_the_job() -> None:
    body = CompletionRequest.model_validate({"prompt": "Once", **OPENAI_KNOBS, "logprobs": 2})

    assert openai_sampling(body) == [{**OPENAI_SAMPLED, "logprobs": 2}]


def sent_as(names: dict[str, str], **values) -> dict:
    """OPENAI_KNOBS in a text completion, under another backend's names (ours -> theirs), and `values`."""
    return (
        {"prompt": "Once"} | {names.get(name, name): value for name, value in OPENAI_KNOBS.items()} | values
    )


def test_llama_server_s_own_names_and_unset_values_reach_the_job_as_ours() -> None:
    """/completion as SillyTavern's llama.cpp type sends it: `n_predict: -1` and `seed: -1` are unset,
    so our defaults, not llama-server's (no length limit, temperature 0.8)."""
    unset = CompletionRequest.model_validate({"prompt": "Once", "n_predict": -1, "seed": -1})
    names = {"max_tokens": "n_predict", "repetition_penalty": "repeat_penalty"}
    given = CompletionRequest.model_validate(sent_as(names, logit_bias=[[7, False]], n_probs=2))

    assert openai_sampling(unset) == [DEFAULT]
    assert openai_sampling(given) == [{**OPENAI_SAMPLED, "logprobs": 2}]


def test_textgen_webui_s_names_and_neutral_samplers_reach_the_job_as_ours() -> None:
    names = {
        "max_tokens": "max_new_tokens",
        "repetition_penalty": "rep_pen",
        "seed": "sampler_seed",
        "stop": "stopping_strings",
    }
    body = CompletionRequest.model_validate(sent_as(names, typical_p=1, tfs=1, mirostat_mode=0))

    assert openai_sampling(body) == [OPENAI_SAMPLED]


CHAT_SHOWN = {"max_tokens": None, "temperature": 0.7, "top_p": 0.95}  # None: DEFAULT_MAX_TOKENS
OPENAI_SHOWN = {**CHAT_SHOWN, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.0}


@pytest.mark.parametrize(
    ("schema", "shown"),
    [
        (GenerationParams, CHAT_SHOWN),
        (ChatCompletionRequest, OPENAI_SHOWN),
        (CompletionRequest, OPENAI_SHOWN),
    ],
)
def test_the_docs_show_the_defaults_a_job_gets(schema, shown: dict) -> None:
    properties = schema.model_json_schema()["properties"]

    assert {name: properties[name]["default"] for name in shown} == shown
