"""`chatbot bench relay-load`: load the relay alone. A synthetic runtime (models.yaml profile
`relay-load`) emits tokens at a fixed rate, each stamped with its emit time; N concurrent SSE
clients against one API process measure streams held, dropped streams, and the delay the relay
adds between a token's emission in the worker and its arrival at the client (p50/p99). It also
counts the CPU each part spends per relayed token (worker, Redis, API, this client), which says how
many cores a given load needs. Backpressure is off, so every stream is admitted."""

import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psutil

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


async def load(url: str, streams: int, tokens: int, ramp_s: float) -> dict:
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=streams + 10)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

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


def relay_load(stream_counts: list[int], tokens: int, ramp_s: float, out: Path) -> None:
    config = StackConfig(
        data_dir=Path(tempfile.mkdtemp(prefix="relay-load-")),
        redis_port=free_port(),
        mongo_port=free_port(),
        api_port=free_port(),
        queues=["synthetic"],
        extra_env={"MODEL_PROFILE": "relay-load", "WORKER_HEARTBEAT_TTL_S": "30", "QUEUE_MAX_DEPTH": "0"},
    )
    results = []
    with EmbeddedStack(config) as stack:
        for streams in stream_counts:
            before = cpu_seconds(stack)
            result = asyncio.run(load(stack.api_url, streams, tokens, ramp_s))
            after = cpu_seconds(stack)
            relayed = max(result["tokens_relayed"], 1)
            result["cpu_ms_per_token"] = {
                name: round(1000 * (after[name] - before[name]) / relayed, 3) for name in after
            }
            print(json.dumps(result))
            results.append(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
