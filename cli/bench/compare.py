"""`chatbot bench compare`: the same GGUF, prompt and greedy parameters through (a) llama-cpp-python
in-process, (b) our whole stack over HTTP/SSE and (c) `python -m llama_cpp.server`, with 1 and N
concurrent clients, one system at a time. Prints the figures and the ratios; writes JSON and a PNG."""

import logging
import platform
from pathlib import Path

from cli.bench import report
from cli.bench.measure import RunStats, run, run_serialized, warm_up
from cli.bench.systems import InProcess, PeerServer, Stack


async def measure_system(system, client_counts: list[int], requests: int) -> list[RunStats]:
    await warm_up(system.stream_one)
    results = []
    for clients in client_counts:
        results.append(await run(system.name, system.stream_one, clients, max(requests, clients)))
        logging.info("%s, %d client(s): done", system.name, clients)
    return results


async def compare(max_tokens: int, requests: int, clients: int, out: Path) -> None:
    client_counts = [1, clients]
    results: list[RunStats] = []

    model_alone = InProcess(max_tokens)
    prompts = {number: model_alone.rendered_prompt(number) for number in range(-2, max(requests, clients))}
    model_alone.generate(-1)  # warm up
    for count in client_counts:
        results.append(run_serialized(InProcess.name, model_alone.generate, count, max(requests, count)))
    await model_alone.close()

    stack = Stack(max_tokens)
    try:
        results += await measure_system(stack, client_counts, requests)
    finally:
        await stack.close()

    peer = PeerServer(max_tokens, prompts)
    try:
        results += await measure_system(peer, client_counts, requests)
    finally:
        await peer.close()

    meta = {"max_tokens": max_tokens, "requests": requests, "clients": client_counts,
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "model": "gemma3-270m-q4_k_m"}  # fmt: skip
    report.write(results, out, meta, ours=Stack.name, model_alone=InProcess.name, peer=PeerServer.name)
