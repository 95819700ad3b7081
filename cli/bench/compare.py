"""`chatbot bench compare`: the same GGUF, prompt and greedy parameters through (a) llama-cpp-python
in-process, (b) our whole stack over HTTP/SSE, (c) `python -m llama_cpp.server` and (d) llama.cpp's
`llama-server --parallel N`, a round per client count, one system at a time. Prints the figures and
the ratios; writes JSON and a PNG."""

import logging
import platform
from pathlib import Path

from cli.bench import report
from cli.bench.measure import RunStats, run, run_serialized, warm_up
from cli.bench.systems import InProcess, LlamaServer, PeerServer, Stack


async def measure_system(system, client_counts: list[int], requests: int) -> list[RunStats]:
    await warm_up(system.stream_one)
    results = []
    for clients in client_counts:
        results.append(await run(system.name, system.stream_one, clients, max(requests, clients)))
        logging.info("%s, %d client(s): done", system.name, clients)
    return results


async def compare(max_tokens: int, requests: int, client_counts: list[int], out: Path) -> None:
    results: list[RunStats] = []

    model_alone = InProcess(max_tokens)
    prompts = {
        number: model_alone.rendered_prompt(number) for number in range(-2, max(requests, *client_counts))
    }
    model_alone.generate(-1)  # warm up
    for count in client_counts:
        results.append(run_serialized(InProcess.name, model_alone.generate, count, max(requests, count)))
    await model_alone.close()

    stack = Stack(max_tokens)
    try:
        results += await measure_system(stack, client_counts, requests)
    finally:
        await stack.close()

    for server in (PeerServer, LlamaServer):
        peer = server(max_tokens, prompts)
        try:
            results += await measure_system(peer, client_counts, requests)
        finally:
            await peer.close()

    meta = {"max_tokens": max_tokens, "requests": requests, "clients": client_counts,
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "model": "gemma3-270m-q4_k_m"}  # fmt: skip
    others = {
        "(b)/(a) stack vs model alone": InProcess.name,
        "(b)/(c) stack vs llama_cpp.server": PeerServer.name,
        "(b)/(d) stack vs llama-server": LlamaServer.name,
    }
    report.write(results, out, meta, ours=Stack.name, others=others)
