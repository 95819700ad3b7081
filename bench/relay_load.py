"""`python -m bench.relay_load`: load the relay alone. A synthetic runtime (models.yaml profile
`relay-load`) emits tokens at a fixed rate, each stamped with its emit time; N concurrent SSE
clients against one API process measure streams held, dropped streams, and the delay the relay
adds between a token's emission in the worker and its arrival at the client (p50/p99). It also
counts the CPU each part spends per relayed token (worker, Redis, API, this client), which says how
many cores a given load needs. Backpressure is off, so every stream is admitted."""

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.measure import percentile
from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig


async def one_stream(client: httpx.AsyncClient, tokens: int, delays: list[float]) -> bool:
    """True when the stream ran to its `done` event."""
    body = {"input_data": "load", "max_tokens": tokens}
    event = ""
    try:
        async with client.stream(
            "POST", "/Llama_stream", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status_code != 200:
                return False
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "token":
                        delays.append(time.time() - float(json.loads(line[6:])["text"]))
                    elif event in ("done", "error"):
                        return event == "done"
    except httpx.HTTPError:
        return False
    return False


def cpu_seconds(stack: EmbeddedStack) -> dict[str, float]:
    """CPU time (user + system) so far of each stack service with its children, and of this client."""

    def total(process: psutil.Process) -> float:
        times = process.cpu_times()
        own = times.user + times.system
        return own + sum(
            child.cpu_times().user + child.cpu_times().system for child in process.children(True)
        )

    used = {name: total(psutil.Process(managed.process.pid)) for name, managed in stack.processes.items()}
    return {**used, "client": total(psutil.Process())}


async def load(url: str, streams: int, tokens: int, ramp_s: float) -> dict:
    delays: list[float] = []
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def staggered(i: int) -> bool:
            await asyncio.sleep(ramp_s * i / streams)
            return await one_stream(client, tokens, delays)

        started = time.perf_counter()
        results = await asyncio.gather(*(staggered(i) for i in range(streams)))
        wall = time.perf_counter() - started
    held = sum(results)
    return {
        "streams": streams,
        "held": held,
        "dropped": streams - held,
        "tokens_relayed": len(delays),
        "added_delay_p50_ms": round(1000 * percentile(delays, 0.50), 2) if delays else None,
        "added_delay_p99_ms": round(1000 * percentile(delays, 0.99), 2) if delays else None,
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--tokens", type=int, default=100, help="tokens per stream (20 tokens/s each)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which the streams open")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "relay_load.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        for streams in args.streams:
            before = cpu_seconds(stack)
            result = asyncio.run(load(stack.api_url, streams, args.tokens, args.ramp))
            after = cpu_seconds(stack)
            relayed = max(result["tokens_relayed"], 1)
            result["cpu_ms_per_token"] = {
                name: round(1000 * (after[name] - before[name]) / relayed, 3) for name in after
            }
            print(json.dumps(result))
            results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
