"""A long conversation is cut from its oldest turns to fit the context window, counted in real tokens and
run as a worker runs it (the fit alone, with a tokenizer of one token a word: tests/unit/test_context_fit.py)."""

import json
import uuid
from pathlib import Path

import pytest
import redis

from jobs.keys import job_channel
from model_registry import ModelSpec, get_registry
from prompts.assembly import character_prompt
from prompts.context_fit import fit_to_window
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.resident import load_models
from schemas.cards import CardData
from schemas.jobs import ChatJob, ChatMessage, ContextFit, SamplingParams
from settings import Settings
from tests.support.cards import SERAPHINA_V2
from tests.support.waiting import wait_until
from workers.chat_job import run_chat_job
from workers.job_handle import JobHandle

REPLY_BUDGET = 256


def long_conversation(turns: int) -> list[ChatMessage]:
    history = [ChatMessage(role="assistant", content="*Seraphina leans over you.* You're awake.")]
    for turn in range(turns):
        history.append(
            ChatMessage(role="user", content=f"Question {turn}: what grows in the glade in spring?")
        )
        history.append(
            ChatMessage(role="assistant", content=f"Answer {turn}: moss, ferns and silver mushrooms.")
        )
    history.append(ChatMessage(role="user", content="And what grows there in winter?"))
    return history


@pytest.fixture(scope="module")
def prompt():
    return character_prompt(CardData.model_validate(SERAPHINA_V2["data"]), long_conversation(120), "Alex")


def test_history_is_trimmed_to_leave_the_reply_budget(gemma: LlamaCppRuntime, prompt) -> None:
    budget = gemma.n_ctx - REPLY_BUDGET
    assert len(gemma.prompt_tokens(prompt.messages)) > gemma.n_ctx  # too long as it is

    fitted = fit_to_window(prompt.messages, prompt.context_fit, budget, gemma.prompt_tokens)

    assert len(gemma.prompt_tokens(fitted)) <= budget
    dropped = len(prompt.messages) - len(fitted)
    assert fitted == prompt.messages[:1] + prompt.messages[1 + dropped :]  # the oldest went, in order
    one_fewer = prompt.messages[:1] + prompt.messages[dropped:]
    assert len(gemma.prompt_tokens(one_fewer)) > budget  # and no more than needed


def test_the_character_and_the_current_exchange_are_never_dropped(gemma: LlamaCppRuntime, prompt) -> None:
    fitted = fit_to_window(
        prompt.messages, prompt.context_fit, gemma.n_ctx - REPLY_BUDGET, gemma.prompt_tokens
    )

    assert fitted[0] == prompt.messages[0]
    assert fitted[-2:] == prompt.messages[-2:]
    assert fitted[-2].content == "And what grows there in winter?"


def test_a_prompt_that_fits_is_sent_whole(gemma: LlamaCppRuntime) -> None:
    short = character_prompt(CardData(name="Luna"), long_conversation(2))

    assert fit_to_window(short.messages, short.context_fit, 1000, gemma.prompt_tokens) == short.messages


def test_a_job_without_a_context_fit_is_never_cut(gemma: LlamaCppRuntime, prompt) -> None:
    assert fit_to_window(prompt.messages, None, 10, gemma.prompt_tokens) == prompt.messages


@pytest.fixture(scope="module")
def small_window(model_cache: Path) -> str:
    """The real model resident in this process, as a worker process holds it, with a 512-token window
    (a full window is then evaluated in seconds on a CPU)."""
    spec = get_registry()["lumimaid"]
    small = spec.model_copy(update={"name": "lumimaid-512", "params": {**spec.params, "n_ctx": 512}})
    load_models([small], Settings(model_cache_dir=model_cache))
    return small.name


def final_event(message: dict | None) -> bool:
    return bool(message) and json.loads(message["data"])["event"] in ("done", "error")


def last_event(events: redis.client.PubSub) -> dict:
    """The job's final event: published while the job ran, it waits in the subscription."""
    message = wait_until(lambda: events.get_message(timeout=1), final_event, what="the job's final event")
    return json.loads(message["data"])


def run_job(job: ChatJob, broker) -> dict:
    """Run a chat job as the worker does; its final event."""
    events = broker.pubsub(ignore_subscribe_messages=True)
    events.subscribe(job_channel(job.job_id))
    run_chat_job(job, JobHandle(broker, job.job_id, log_ttl_s=60), "chat", worker="test")
    return last_event(events)


def test_a_chat_job_longer_than_the_window_is_answered_within_it(small_window: str, broker) -> None:
    prompt = character_prompt(CardData.model_validate(SERAPHINA_V2["data"]), long_conversation(40), "Alex")
    job = ChatJob(
        job_id=uuid.uuid4().hex,
        model=small_window,
        messages=prompt.messages,
        sampling=SamplingParams(max_tokens=16, temperature=0),
        context_fit=prompt.context_fit,
    )

    final = run_job(job, broker)

    assert final["event"] == "done", final
    assert 0 < final["data"]["usage"]["prompt_tokens"] <= 512 - 16
    assert final["data"]["usage"]["completion_tokens"] == 16  # the reply had its whole budget
    assert final["data"]["finish_reason"] == "length"


@pytest.fixture(scope="module")
def word_window() -> str:
    """A synthetic model (no weights: one token a word, fast) with a 100-token window: its prompts can
    be made exactly any length, so the fit's budget is seen to the token."""
    spec = ModelSpec(
        name="words-100", runtime="synthetic", weights="none", params={"n_ctx": 100, "tokens_per_s": 2000}
    )
    load_models([spec], Settings())
    return spec.name


@pytest.mark.parametrize("max_tokens", [1, 40, 85])
def test_a_long_chat_leaves_exactly_its_max_tokens_of_room_and_gets_them_all(
    word_window: str, broker, max_tokens: int
) -> None:
    character = ChatMessage(role="system", content=" ".join(["Seraphina"] * 10))
    history = [ChatMessage(role=("user", "assistant")[turn % 2], content=f"w{turn}") for turn in range(200)]
    current = ChatMessage(role="user", content="And in winter?")
    job = ChatJob(
        job_id=uuid.uuid4().hex,
        model=word_window,
        messages=[character, *history, current],
        sampling=SamplingParams(max_tokens=max_tokens),
        context_fit=ContextFit(keep_first=1, keep_last=1),
    )

    final = run_job(job, broker)

    usage = final["data"]["usage"]
    # One-word history messages: the fit fills the prompt to the token, never past the reply's room.
    assert usage["prompt_tokens"] == 100 - max_tokens
    assert usage["completion_tokens"] == max_tokens and final["data"]["finish_reason"] == "length"
