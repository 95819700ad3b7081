"""Timing of streamed generations: one request's trace, and the statistics of a run of many."""

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

# A system under test: given a request number, stream the reply's text pieces.
StreamOne = Callable[[int], AsyncIterator[str]]


@dataclass
class Trace:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def decode_tokens_per_s(self) -> float:
        decode_s = self.total_s - self.ttft_s
        return (self.tokens - 1) / decode_s if self.tokens > 1 and decode_s > 0 else 0.0


async def trace(stream: AsyncIterator[str]) -> Trace:
    started = time.perf_counter()
    first = None
    tokens = 0
    async for piece in stream:
        if piece:
            tokens += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return Trace(ttft_s=(first or end) - started, total_s=end - started, tokens=tokens)


@dataclass
class RunStats:
    system: str
    clients: int
    requests: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    tokens_per_s_per_stream: float
    aggregate_tokens_per_s: float
    requests_per_hour: float
    tokens_per_request: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(system: str, stream_one: StreamOne, clients: int, requests: int) -> RunStats:
    """`requests` generations by `clients` concurrent clients, each taking the next request number."""
    numbers = iter(range(requests))
    traces: list[Trace] = []

    async def client() -> None:
        for number in numbers:
            traces.append(await trace(stream_one(number)))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summarize(system, clients, traces, time.perf_counter() - started)


def summarize(system: str, clients: int, traces: list[Trace], wall_s: float) -> RunStats:
    requests = len(traces)
    total_tokens = sum(t.tokens for t in traces)
    return RunStats(
        system=system,
        clients=clients,
        requests=requests,
        ttft_p50_ms=1000 * percentile([t.ttft_s for t in traces], 0.50),
        ttft_p99_ms=1000 * percentile([t.ttft_s for t in traces], 0.99),
        tokens_per_s_per_stream=statistics.median(t.decode_tokens_per_s for t in traces),
        aggregate_tokens_per_s=total_tokens / wall_s,
        requests_per_hour=requests / wall_s * 3600,
        tokens_per_request=total_tokens / len(traces),
    )


def run_serialized(
    system: str, generate: Callable[[int], tuple[float, float, int]], clients: int, requests: int
) -> RunStats:
    """The model alone serves one generation at a time (through its engine, one sequence), so
    `clients` closed-loop clients are simulated exactly: request j is
    sent when request j - clients has finished (the first `clients` at the start), served in order.
    `generate(number)` returns (first token time, end time, tokens) on the perf_counter clock."""
    started = time.perf_counter()
    sent = [started] * min(clients, requests)
    traces: list[Trace] = []
    for number in range(requests):
        first, end, tokens = generate(number)
        traces.append(Trace(ttft_s=first - sent[number], total_s=end - sent[number], tokens=tokens))
        sent.append(end)
    return summarize(system, clients, traces, time.perf_counter() - started)


async def warm_up(stream_one: StreamOne, times: int = 2) -> None:
    for number in range(times):
        await trace(stream_one(-1 - number))


@dataclass
class TurnTrace:
    """A turn's kind: "first turn, new card", "first turn, resident card" or "turn N"."""

    kind: str
    ttft_s: float


@dataclass
class MultiTurnStats:
    system: str
    card_tokens: int
    ttft_p50_ms: dict[str, float] = field(default_factory=dict)  # by turn kind
    samples: dict[str, int] = field(default_factory=dict)

    @property
    def second_turn_speedup(self) -> float:
        """How many times lower the second turn's TTFT is than a first turn's with a new card."""
        return self.ttft_p50_ms["first turn, new card"] / self.ttft_p50_ms["turn 2"]


def summarize_turns(system: str, card_tokens: int, traces: list[TurnTrace]) -> MultiTurnStats:
    stats = MultiTurnStats(system, card_tokens)
    for kind in dict.fromkeys(trace.kind for trace in traces):
        values = [trace.ttft_s for trace in traces if trace.kind == kind]
        stats.ttft_p50_ms[kind] = 1000 * percentile(values, 0.5)
        stats.samples[kind] = len(values)
    return stats
