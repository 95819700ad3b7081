"""Slots shared between keys on the real Gemma GGUF through the llama.cpp engine (no stack needed):
another key's sequence takes a slot from a key that holds every one, the preempted sequence pauses
and then goes on with exactly the text it would have had (its sampler, random state included, kept;
its tokens prefilled again), and a worker asks the engine whether a job would start (and holds the slot) before taking it."""

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from prometheus_client import REGISTRY

from runtimes.fair_share import Share
from runtimes.llama_cpp import LlamaCppRuntime
from schemas.jobs import ChatMessage, SamplingParams
from tests.support.waiting import wait_until

A, B = Share("cb_alice"), Share("cb_bob")
TOPICS = ["dragons", "the sea", "a lighthouse", "two cats", "a robot", "the moon", "a baker", "winter"]
LONG = 64  # tokens of each of A's replies: they all run to it (checked)


def story(topic: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=f"Tell me a very long story about {topic}.")]


def sampling(i: int, max_tokens: int = LONG) -> SamplingParams:
    """Greedy for even streams, sampled with a seed for odd ones: both must come out the same."""
    if i % 2:
        return SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=1000 + i)
    return SamplingParams(max_tokens=max_tokens, temperature=0)


def preemptions(gemma: LlamaCppRuntime) -> float:
    return REGISTRY.get_sample_value("chatbot_worker_preemptions_total", {"model": gemma.name}) or 0.0


def run_a(gemma: LlamaCppRuntime, while_running=None) -> tuple[list[str], list[str], list[str]]:
    """A's eight stories at once (every slot); `while_running()` once each has streamed a token.
    (texts, finish reasons, the order in which replies ended: `a<i>`, and whatever `while_running` ends)."""
    texts = [""] * len(TOPICS)
    ended: list[str] = []
    started = [threading.Event() for _ in TOPICS]

    def one(i: int) -> str:
        def on_text(text: str) -> bool:
            texts[i] += text
            started[i].set()
            return True

        result = gemma.generate(story(TOPICS[i]), sampling(i), on_text, share=A)
        ended.append(f"a{i}")
        return result.finish_reason

    with ThreadPoolExecutor(len(TOPICS) + 1) as pool:
        futures = [pool.submit(one, i) for i in range(len(TOPICS))]
        if while_running is not None:
            for event in started:
                assert event.wait(120), "a stream never started"
            while_running(ended)
        reasons = [future.result() for future in futures]
    return texts, reasons, ended


def test_another_keys_chat_finishes_first_and_the_preempted_replies_are_unchanged(gemma) -> None:
    alone, alone_reasons, _ = run_a(gemma)
    before = preemptions(gemma)

    def b_chat(ended: list[str]) -> None:
        result = gemma.generate(
            story("a mouse"), SamplingParams(max_tokens=3, temperature=0), lambda _: True, share=B
        )
        assert result.completion_tokens == 3
        ended.append("b")

    shared, shared_reasons, order = run_a(gemma, while_running=b_chat)

    assert alone_reasons == ["length"] * len(TOPICS)  # A's replies run long: B's must end first
    assert order[0] == "b", order
    assert preemptions(gemma) > before
    assert shared_reasons == alone_reasons
    assert shared == alone  # greedy and seeded alike, paused or not


def test_a_worker_starts_another_keys_job_but_not_a_ninth_of_a_key_at_its_share(gemma) -> None:
    engine = gemma.engine()
    answers: dict[str, bool] = {}

    def would_start(share: Share) -> bool:
        with engine.slot_for(share, 0.2, keep_waiting=lambda: False) as room:
            return room

    def ask(ended: list[str]) -> None:
        answers["alice"] = would_start(A)
        # A ninth of A's waits, asking first; B's still comes in ahead of it.
        stop_waiting = threading.Event()
        alice_waits = ThreadPoolExecutor(1).submit(
            lambda: engine.slot_for(A, 0.05, keep_waiting=lambda: not stop_waiting.is_set()).__enter__()
        )
        answers["bob"] = would_start(B)
        answers["alice's ninth, meanwhile"] = alice_waits.done()
        stop_waiting.set()
        answers["alice's ninth"] = alice_waits.result()
        answers["batch item"] = would_start(Share("batch:x", batch=True))
        with ExitStack() as held:  # held slots count: B's fair share is half the slots, no more
            answers["bob's jobs"] = [
                held.enter_context(engine.slot_for(B, 0.2, keep_waiting=lambda: False)) for _ in TOPICS
            ]

    run_a(gemma, while_running=ask)
    wait_until(lambda: would_start(A), lambda free: free, what="the slots to free")

    half = len(TOPICS) // 2
    assert answers == {
        "alice": False,
        "bob": True,
        "alice's ninth, meanwhile": False,
        "alice's ninth": False,
        "batch item": False,
        "bob's jobs": [True] * half + [False] * half,
    }


def test_a_paused_stream_whose_job_is_no_longer_wanted_ends_without_waiting_for_a_slot(gemma) -> None:
    """A paused stream streams nothing, so it cannot hear of its client's leaving from a token: it asks."""
    a_gone = threading.Event()
    ended: list[tuple[str, str]] = []
    started = [threading.Event() for _ in TOPICS]

    def a(i: int) -> None:
        def on_text(text: str) -> bool:
            started[i].set()
            return True

        result = gemma.generate(
            story(TOPICS[i]), sampling(i), on_text, share=A, still_wanted=lambda: not a_gone.is_set()
        )
        ended.append((f"a{i}", result.finish_reason))

    def b() -> None:
        def on_text(text: str) -> bool:
            a_gone.set()  # B runs, so one of A's is paused: A's clients leave now
            return True

        result = gemma.generate(
            story("a mouse"), SamplingParams(max_tokens=48, temperature=0), on_text, share=B
        )
        ended.append(("b", result.finish_reason))

    with ThreadPoolExecutor(len(TOPICS) + 1) as pool:
        streams = []
        for i in range(len(TOPICS)):  # one after another: their arrival order is their numbering
            streams.append(pool.submit(a, i))
            assert started[i].wait(120), "a stream never started"
        pool.submit(b).result()
        for stream in streams:
            stream.result()

    paused = [name for name, reason in ended if reason == "cancelled"]
    assert paused == [f"a{len(TOPICS) - 1}"]  # the latest of A's, and only it (the others kept streaming)
    assert ended.index((paused[0], "cancelled")) < ended.index(("b", "length"))
