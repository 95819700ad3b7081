"""A long conversation is cut from its oldest turns to fit the context window, counted in real tokens."""

import json
import time
import uuid
from pathlib import Path

import pytest
import redis

from model_registry import get_registry
from mongo.conversations import save_job_reply
from prompts.assembly import character_prompt
from prompts.context_fit import fit_to_window
from schemas.cards import CardData
from schemas.jobs import ChatJob, ChatMessage, SamplingParams
from schemas.redis_keys import job_channel
from settings import Settings
from tests.cards_fixtures import SERAPHINA_V2
from workers.chat_job import run_chat_job
from workers.publisher import EventPublisher
from workers.runtimes.llama_cpp import LlamaCppRuntime
from workers.runtimes.resident import load_models

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


def last_event(events: redis.client.PubSub) -> dict:
    """The job's final event: published while the job ran, it waits in the subscription."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = events.get_message(timeout=1)
        if message and json.loads(message["data"])["event"] in ("done", "error"):
            return json.loads(message["data"])
    raise AssertionError("the job published no final event")


def test_a_chat_job_longer_than_the_window_is_answered_within_it(small_window: str, broker) -> None:
    prompt = character_prompt(CardData.model_validate(SERAPHINA_V2["data"]), long_conversation(40), "Alex")
    job = ChatJob(
        job_id=uuid.uuid4().hex,
        model=small_window,
        messages=prompt.messages,
        sampling=SamplingParams(max_tokens=16, temperature=0),
        context_fit=prompt.context_fit,
    )
    events = broker.pubsub(ignore_subscribe_messages=True)
    events.subscribe(job_channel(job.job_id))

    run_chat_job(job, EventPublisher(broker, job.job_id, log_ttl_s=60), save_job_reply, worker="test")

    final = last_event(events)
    assert final["event"] == "done", final
    assert 0 < final["data"]["usage"]["prompt_tokens"] <= 512 - 16
