"""`chatbot bench transformers`: the `llama` model (the transformers runtime) through (f) transformers
alone in this process, `model.generate()` one request at a time (what the runtime did before its
engine), (g) our stack over `/v1/chat/completions` with `model: llama` (the continuous-batching engine),
and (h) `transformers serve --continuous-batching` (transformers' own `ContinuousBatchingManager` behind
its OpenAI server), a round per client count, on the same greedy questions. Prints the figures, our
stack's scaling (aggregate tok/s and TTFT p50 against its own 1-client round), and writes
results/transformers/."""

import json
import logging
import platform
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import torch
from transformers.generation.streamers import BaseStreamer

from cli.bench import report
from cli.bench.compare import measure_system
from cli.bench.measure import RunStats, run_serialized
from cli.bench.systems import CompletionServer, Stack, question
from embedded.processes import free_port
from model_registry import get_registry
from runtimes.model_files import verified_weights
from runtimes.transformers import TransformersRuntime
from schemas.jobs import ChatMessage
from settings import get_settings

MODEL = "llama"


def messages_for(number: int) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=question(number))]


class _FirstToken(BaseStreamer):
    """Notes when `generate()` hands over its first new token (its first `put` is the prompt)."""

    def __init__(self) -> None:
        self.puts = 0
        self.first: float | None = None

    def put(self, value) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


class TransformersAlone:
    """(f) The model alone: transformers' `generate()` in this thread, greedy, one request at a time."""

    name = "(f) transformers generate() in-process"

    def __init__(self, max_tokens: int) -> None:
        spec = get_registry()[MODEL]
        cache = get_settings().model_cache_dir
        self.runtime = TransformersRuntime(spec, verified_weights(spec, cache), cache)
        self.model = self.runtime._model
        self.max_tokens = max_tokens

    def rendered_prompt(self, number: int) -> str:
        return self.runtime._tokenizer.decode(self.runtime.prompt_tokens(messages_for(number)))

    def generate(self, number: int) -> tuple[float, float, int]:
        prompt = self.runtime.prompt_tokens(messages_for(number))
        streamer = _FirstToken()
        with torch.inference_mode():
            output = self.model.generate(
                torch.tensor([prompt], device=self.model.device),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long, device=self.model.device),
                max_new_tokens=self.max_tokens,
                do_sample=False,
                eos_token_id=self.runtime._stop_ids,
                streamer=streamer,
            )
        end = time.perf_counter()
        return streamer.first or end, end, output.shape[1] - len(prompt)


class LlamaStack(Stack):
    """(g) Our service: `/v1/chat/completions` with `model: llama`, streamed."""

    name = "(g) our stack, model: llama"

    async def stream_one(self, number: int) -> AsyncIterator[str]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": question(number)}],
                "max_tokens": self.max_tokens, "temperature": 0, "stream": True}  # fmt: skip
        async with self.client.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices")
                if choices and choices[0]["delta"].get("content"):
                    yield choices[0]["delta"]["content"]


class TransformersServe(CompletionServer):
    """(h) `transformers serve --continuous-batching` on the converted model, sent our rendered prompt
    on `/v1/completions`."""

    name = "(h) transformers serve --continuous-batching"

    def __init__(self, max_tokens: int, prompts: dict[int, str], model_dir: str) -> None:
        port = free_port()
        command = [str(Path(sys.executable).with_name("transformers")), "serve", model_dir,
                   "--continuous-batching", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        self.model_dir = model_dir
        super().__init__(command, port, max_tokens, prompts)

    def ready(self, base_url: str) -> bool:
        import httpx

        return httpx.get(f"{base_url}/health").status_code == 200

    async def stream_prompt(self, prompt: str) -> AsyncIterator[str]:
        body = {"model": self.model_dir, "prompt": prompt, "max_tokens": self.max_tokens, "temperature": 0,
                "stream": True}  # fmt: skip
        async with self.client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:]).get("choices")
                    if choices and choices[0].get("text"):
                        yield choices[0]["text"]


def scaling(results: list[RunStats], system: str) -> dict[int, dict[str, float]]:
    """Each round of `system` against its own 1-client round: aggregate tok/s and TTFT p50, as ratios."""
    rounds = {r.clients: r for r in results if r.system == system}
    one = rounds.get(1)
    if one is None:
        return {}
    return {
        clients: {
            "aggregate_tokens_per_s": r.aggregate_tokens_per_s / one.aggregate_tokens_per_s,
            "ttft_p50": r.ttft_p50_ms / one.ttft_p50_ms,
        }
        for clients, r in sorted(rounds.items())
    }


async def transformers_bench(
    max_tokens: int, requests: int, client_counts: list[int], out: Path, systems: str
) -> None:
    results: list[RunStats] = []
    load_before = _load_average()
    alone = TransformersAlone(max_tokens)
    prompts = {number: alone.rendered_prompt(number) for number in range(-2, max(requests, *client_counts))}
    model_dir = str(alone.runtime.gguf_base_dir)
    if "f" in systems:
        alone.generate(-1)  # warm up
        for count in client_counts:
            results.append(run_serialized(alone.name, alone.generate, count, max(requests, count)))
            logging.info("%s, %d client(s): done", alone.name, count)
    del alone
    if "g" in systems:
        stack = LlamaStack(max_tokens)
        try:
            results += await measure_system(stack, client_counts, requests)
        finally:
            await stack.close()
    if "h" in systems:
        server = TransformersServe(max_tokens, prompts, model_dir)
        try:
            results += await measure_system(server, client_counts, requests)
        finally:
            await server.close()

    ours = scaling(results, LlamaStack.name)
    meta = {"max_tokens": max_tokens, "requests": requests, "clients": client_counts, "systems": systems,
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "model": "gemma3-270m (transformers, float32)",
            "load_average_before": load_before, "load_average_after": _load_average(), "stack_scaling": ours}  # fmt: skip
    pairs = {"(g)/(f) stack vs generate() alone": (LlamaStack.name, TransformersAlone.name),
             "(g)/(h) stack vs transformers serve": (LlamaStack.name, TransformersServe.name)}  # fmt: skip
    report.write(results, out, meta, [LlamaStack.name], TransformersAlone.name, pairs)
    for clients, ratio in ours.items():
        print(f"(g) at {clients} client(s) vs 1: aggregate x{ratio['aggregate_tokens_per_s']:.2f}, "
              f"TTFT p50 x{ratio['ttft_p50']:.2f}")  # fmt: skip
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {meta['load_average_after']}")


def _load_average() -> str:
    """The host's load average: the machine is shared, and other work there moves every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
