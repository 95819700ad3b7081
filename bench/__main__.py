"""`python -m bench`: the same GGUF, prompt and greedy parameters through (a) llama-cpp-python
in-process, (b) our whole stack over HTTP/SSE and (c) `python -m llama_cpp.server`, with 1 and N
concurrent clients, one system at a time. Prints the figures and the ratios; writes JSON and a PNG."""

import argparse
import asyncio
import logging
import platform
from pathlib import Path

from bench import report
from bench.measure import RunStats, run, run_serialized, warm_up
from bench.systems import InProcess, PeerServer, Stack
from settings import PROJECT_ROOT


async def measure_system(system, client_counts: list[int], requests: int) -> list[RunStats]:
    await warm_up(system.stream_one)
    results = []
    for clients in client_counts:
        results.append(await run(system.name, system.stream_one, clients, max(requests, clients)))
        logging.info("%s, %d client(s): done", system.name, clients)
    return results


async def main(args: argparse.Namespace) -> None:
    client_counts = [1, args.clients]
    results: list[RunStats] = []

    model_alone = InProcess(args.max_tokens)
    prompts = {
        number: model_alone.rendered_prompt(number) for number in range(-2, max(args.requests, args.clients))
    }
    model_alone.generate(-1)  # warm up
    for clients in client_counts:
        results.append(
            run_serialized(InProcess.name, model_alone.generate, clients, max(args.requests, clients))
        )
    await model_alone.close()

    stack = Stack(args.max_tokens)
    try:
        results += await measure_system(stack, client_counts, args.requests)
    finally:
        await stack.close()

    peer = PeerServer(args.max_tokens, prompts)
    try:
        results += await measure_system(peer, client_counts, args.requests)
    finally:
        await peer.close()

    meta = {"max_tokens": args.max_tokens, "requests": args.requests, "clients": client_counts,
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "model": "gemma3-270m-q4_k_m"}  # fmt: skip
    report.write(results, args.out, meta, ours=Stack.name, model_alone=InProcess.name, peer=PeerServer.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=8, help="requests per system and client count")
    parser.add_argument(
        "--clients", type=int, default=4, help="N, the concurrent clients of the second round"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(parser.parse_args()))
