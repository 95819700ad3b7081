"""`chatbot bench relay-load`: load the relay alone. A synthetic runtime (models.yaml profile
`relay-load`) emits tokens at a fixed rate, each stamped with its emit time; N concurrent SSE
clients measure streams held, dropped streams, and the delay the relay adds between a token's
emission in the worker and its arrival at the client (p50/p99). It also counts the CPU each part
spends per relayed token (worker, Redis, API, this client), which says how many cores a given load
needs. Backpressure is off, so every stream is admitted.

Each round runs with 1 and with N API processes behind the one port (uvicorn's workers): per API
process, the job event messages it received from Redis (its `chatbot_relay_messages_received_total`)
and its CPU per message received (a token, or a stream's `started`/`done`), so the figures say
whether adding an API process spreads the relay's work or repeats it."""

import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from cli.bench.access import HEADERS, STACK_ENV
from cli.bench.measure import percentile
from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig


async def one_stream(session: aiohttp.ClientSession, tokens: int, delays: list[float]) -> str:
    """ "done" when the stream ran to its `done` event, else why it did not. aiohttp (its HTTP parser
    is C) keeps the client light: it shares the machine with what it measures."""
    body = {"input_data": "load", "max_tokens": tokens}
    event = b""
    try:
        async with session.post(
            "/Llama_stream", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status != 200:
                return f"status {response.status}"
            async for line in response.content:
                if line.startswith(b"event: "):
                    event = line[7:].strip()
                elif line.startswith(b"data: "):
                    if event == b"token":
                        delays.append(time.time() - float(json.loads(line[6:])["text"]))
                    elif event == b"done":
                        return "done"
                    elif event == b"error":
                        return f"error event: {json.loads(line[6:]).get('message', '')}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        return type(exc).__name__
    return "ended without done"


def cpu_seconds(stack: EmbeddedStack) -> dict[str, float]:
    """CPU time (user + system) so far of each stack service with its children, and of this client."""

    def total(process: psutil.Process) -> float:
        times = process.cpu_times()
        own = times.user + times.system
        return own + sum(
            child.cpu_times().user + child.cpu_times().system for child in process.children(True)
        )

    used = {name: total(psutil.Process(managed.process.pid)) for name, managed in stack.processes.items()}
    own = psutil.Process().cpu_times()  # not total(): the stack's services are this process's children
    return {**used, "client": own.user + own.system}


def received_by_process(url: str) -> dict[int, float]:
    """Each API process's count of job event messages received (its PID label in /metrics)."""
    return {
        int(sample.labels["pid"]): sample.value
        for family in text_string_to_metric_families(
            httpx.get(f"{url}/metrics", headers=HEADERS, timeout=30).text
        )
        for sample in family.samples
        if sample.name == "chatbot_relay_messages_received_total"
    }


def api_snapshot(url: str) -> dict[int, tuple[float, float]]:
    """Each API process's messages received so far and CPU seconds so far, by PID."""
    return {
        pid: (messages, sum(psutil.Process(pid).cpu_times()[:2]))
        for pid, messages in received_by_process(url).items()
    }


def per_process(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]) -> list[dict]:
    """What each API process received during a round, and its CPU ms per message received."""
    processes = []
    for pid, (received, cpu_s) in before.items():
        messages = after[pid][0] - received
        spent_ms = 1000 * (after[pid][1] - cpu_s)
        processes.append({
            "pid": pid,
            "messages_received": int(messages),
            "cpu_ms_per_message": round(spent_ms / messages, 3) if messages else None,
        })  # fmt: skip
    return processes


async def load(url: str, streams: int, tokens: int, ramp_s: float) -> dict:
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=streams + 10)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout, headers=HEADERS) as session:

        async def staggered(i: int) -> str:
            await asyncio.sleep(ramp_s * i / streams)
            return await one_stream(session, tokens, delays)

        started = time.perf_counter()
        results = await asyncio.gather(*(staggered(i) for i in range(streams)))
        wall = time.perf_counter() - started
    held = results.count("done")
    return {
        "streams": streams,
        "held": held,
        "dropped": streams - held,
        "drop_reasons": dict(Counter(result for result in results if result != "done")),
        "tokens_relayed": len(delays),
        "added_delay_p50_ms": round(1000 * percentile(delays, 0.50), 2) if delays else None,
        "added_delay_p99_ms": round(1000 * percentile(delays, 0.99), 2) if delays else None,
        "wall_s": round(wall, 1),
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summary(result: dict) -> dict:
    """Per API process: messages received, and CPU ms per message (mean over the processes that had any)."""
    processes = result["api_processes"]
    busy = [process["cpu_ms_per_message"] for process in processes if process["cpu_ms_per_message"]]
    return {
        "messages_per_process": mean([process["messages_received"] for process in processes]),
        "cpu_ms_per_message_per_process": mean(busy) if busy else None,
    }


def side_by_side(results: list[dict]) -> list[str]:
    """Each round with N API processes against the same round with one, as ratios."""
    lines = []
    single = {result["streams"]: summary(result) for result in results if len(result["api_processes"]) == 1}
    for result in results:
        base, now, n = single.get(result["streams"]), summary(result), len(result["api_processes"])
        if base is None or n == 1 or not base["cpu_ms_per_message_per_process"]:
            continue
        lines.append(
            f"{result['streams']} streams, 1 -> {n} API processes: messages received per process "
            f"{base['messages_per_process']:.0f} -> {now['messages_per_process']:.0f} "
            f"(x{now['messages_per_process'] / base['messages_per_process']:.2f}), "
            f"CPU per relayed token per process {base['cpu_ms_per_message_per_process']:.3f} -> "
            f"{now['cpu_ms_per_message_per_process']:.3f} ms "
            f"(x{now['cpu_ms_per_message_per_process'] / base['cpu_ms_per_message_per_process']:.2f})"
        )
    return lines


def with_api_processes(workers: int, stream_counts: list[int], tokens: int, ramp_s: float) -> list[dict]:
    """The rounds on a stack whose API runs `workers` processes."""
    config = StackConfig(
        data_dir=Path(tempfile.mkdtemp(prefix="relay-load-")),
        redis_port=free_port(),
        api_port=free_port(),
        api_workers=workers,
        queues=["synthetic"],
        extra_env={
            "MODEL_PROFILE": "relay-load",
            "WORKER_HEARTBEAT_TTL_S": "30",
            "QUEUE_MAX_DEPTH": "0",
            **STACK_ENV,
        },
    )
    results = []
    with EmbeddedStack(config) as stack:
        stack.processes["api"].wait_until(
            lambda: len(received_by_process(stack.api_url)) == workers, 120, f"ready ({workers} processes)"
        )
        for streams in stream_counts:
            before, api_before = cpu_seconds(stack), api_snapshot(stack.api_url)
            result = asyncio.run(load(stack.api_url, streams, tokens, ramp_s))
            after, api_after = cpu_seconds(stack), api_snapshot(stack.api_url)
            relayed = max(result["tokens_relayed"], 1)
            result["cpu_ms_per_token"] = {
                name: round(1000 * (after[name] - before[name]) / relayed, 3) for name in after
            }
            result["api_processes"] = per_process(api_before, api_after)
            print(json.dumps(result))
            results.append(result)
    return results


def relay_load(
    stream_counts: list[int], tokens: int, ramp_s: float, out: Path, api_processes: list[int]
) -> None:
    results = [
        result
        for workers in api_processes
        for result in with_api_processes(workers, stream_counts, tokens, ramp_s)
    ]
    for line in side_by_side(results):
        print(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
