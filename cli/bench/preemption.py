"""`chatbot bench preemption`: what fair sharing costs the key it preempts.

In-process, on the real model (the `lumimaid` llama.cpp engine): key A's eight greedy streams (every
slot) alone, then again while key B sends short chats one after another, `gap` seconds apart; each
of B's takes a slot from A (a preemption), and the paused stream refills its tokens when a slot is
free. Rounds alternate, so both see the same machine; the ratios are the result."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import REGISTRY

from cli.bench.environment import cpu_description
from model_registry import get_registry
from runtimes.fair_share import Share
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.model_files import verified_weights
from schemas.jobs import ChatMessage, SamplingParams
from settings import get_settings

TOPICS = ["dragons", "the sea", "a lighthouse", "two cats", "a robot", "the moon", "a baker", "winter"]
B_TOKENS = 8


def _story(topic: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=f"Tell me a very long story about {topic}.")]


def _preemptions(runtime: LlamaCppRuntime) -> float:
    return REGISTRY.get_sample_value("chatbot_worker_preemptions_total", {"model": runtime.name}) or 0.0


def _round(runtime: LlamaCppRuntime, tokens: int, gap_s: float | None) -> dict:
    """A's streams, with B's chats `gap_s` apart meanwhile (None: alone)."""
    finished = threading.Event()
    b_runs = []

    def a(topic: str) -> int:
        sampling = SamplingParams(max_tokens=tokens, temperature=0)
        return runtime.generate(_story(topic), sampling, lambda _: True, share=Share("A")).completion_tokens

    def b() -> None:
        while not finished.is_set():
            sampling = SamplingParams(max_tokens=B_TOKENS, temperature=0)
            b_runs.append(runtime.generate(_story("a mouse"), sampling, lambda _: True, share=Share("B")))
            finished.wait(gap_s)

    before = _preemptions(runtime)
    started = time.perf_counter()
    with ThreadPoolExecutor(len(TOPICS) + 1) as pool:
        streams = [pool.submit(a, topic) for topic in TOPICS]
        chats = pool.submit(b) if gap_s is not None else None
        a_tokens = sum(stream.result() for stream in streams)
        finished.set()
        if chats is not None:
            chats.result()
    seconds = time.perf_counter() - started
    b_tokens = sum(run.completion_tokens for run in b_runs)
    return {
        "a_seconds": seconds,
        "a_tokens": a_tokens,
        "b_chats": len(b_runs),
        "all_tok_s": (a_tokens + b_tokens) / seconds,
        "preemptions": _preemptions(runtime) - before,
    }


def preemption_bench(tokens: int, gap_s: float, rounds: int, out: Path) -> None:
    spec = get_registry()["lumimaid"]
    runtime = LlamaCppRuntime(spec, verified_weights(spec, get_settings().model_cache_dir))
    runtime.generate(_story("warming up"), SamplingParams(max_tokens=4), lambda _: True)
    results = []
    for number in range(rounds):
        alone, shared = _round(runtime, tokens, None), _round(runtime, tokens, gap_s)
        row = {
            "round": number,
            "alone": alone,
            "shared": shared,
            "a_time_ratio": shared["a_seconds"] / alone["a_seconds"],
            "all_tok_s_ratio": shared["all_tok_s"] / alone["all_tok_s"],
        }
        results.append(row)
        print(
            f"round {number}: A's {alone['a_tokens']} tokens alone {alone['a_seconds']:.1f} s, with B's "
            f"{shared['b_chats']} chats ({shared['preemptions']:.0f} preemptions) {shared['a_seconds']:.1f} s "
            f"= x{row['a_time_ratio']:.2f} the time; all tokens/s x{row['all_tok_s_ratio']:.2f}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"cpu": cpu_description(), "tokens": tokens, "gap_s": gap_s, "rounds": results}, indent=2)
    )
    print(f"written: {out}")
