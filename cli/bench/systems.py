"""The three systems the benchmark compares on the same GGUF, prompt and greedy parameters:
(a) llama-cpp-python in this process, (b) our whole stack over HTTP/SSE, (c) the peer
`python -m llama_cpp.server` over its OpenAI endpoint. Each is started alone and stopped after."""

import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

from api.turns.chat_messages import character_messages
from embedded.processes import ManagedProcess, free_port, port_open
from embedded.stack import EmbeddedStack, StackConfig
from model_registry import get_registry
from schemas.chat import LumimaidRequest
from schemas.jobs import ChatMessage, SamplingParams
from settings import get_settings
from workers.runtimes.llama_cpp import LlamaCppRuntime
from workers.runtimes.model_files import verified_weights

CHARACTER = {
    "character_name": "Rachel",
    "greeting": "*Rachel stands nervously at the lectern...*",
    "context": "Rachel is a devout Catholic girl of about 19 years old...",
    "image": "https://drive.google.com/thumbnail?id=12PqUS6bj4eAO_fLDaWQmoq94-771xfim",
}
QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Why is the sky blue?",
    "How many legs does a spider have?",
]


def question(number: int) -> str:
    return QUESTIONS[number % len(QUESTIONS)]


def request_body(number: int, max_tokens: int) -> dict:
    return {**CHARACTER, "input_data": question(number), "max_tokens": max_tokens, "temperature": 0}


def messages_for(number: int) -> list[ChatMessage]:
    """Exactly what /Lumimaid_stream sends the model for this request."""
    return character_messages(LumimaidRequest(**request_body(number, 1))).messages


class InProcess:
    """(a) The model alone: llama-cpp-python in this process's main thread, one generation at a time."""

    name = "in-process llama-cpp-python"

    def __init__(self, max_tokens: int) -> None:
        spec = get_registry()["lumimaid"]
        self.runtime = LlamaCppRuntime(spec, verified_weights(spec, get_settings().model_cache_dir))
        self.sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    def rendered_prompt(self, number: int) -> str:
        return self.runtime.rendered_prompt(messages_for(number))

    def generate(self, number: int) -> tuple[float, float, int]:
        """One greedy generation in this thread: (first token time, end time, tokens)."""
        first: list[float] = []

        def on_text(_: str) -> bool:
            first.append(time.perf_counter())
            return True

        self.runtime.generate(messages_for(number), self.sampling, on_text)
        end = time.perf_counter()
        return (first[0] if first else end), end, len(first)

    async def close(self) -> None:
        self.runtime.close()


class Stack:
    """(b) Our service: API -> Celery queue -> worker -> Redis pub/sub -> SSE."""

    name = "our stack (HTTP/SSE)"

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.stack = EmbeddedStack(
            StackConfig(
                data_dir=Path(tempfile.mkdtemp(prefix="bench-stack-")),
                redis_port=free_port(),
                mongo_port=free_port(),
                api_port=free_port(),
                queues=["cpu"],
            )
        ).start(flower=False)
        self.client = httpx.AsyncClient(base_url=self.stack.api_url, timeout=300)

    async def stream_one(self, number: int) -> AsyncIterator[str]:
        body = request_body(number, self.max_tokens)
        async with aconnect_sse(self.client, "POST", "/Lumimaid_stream", json=body) as source:
            async for event in source.aiter_sse():
                if event.event == "token":
                    yield json.loads(event.data)["text"]
                elif event.event == "error":
                    raise RuntimeError(event.data)

    async def close(self) -> None:
        await self.client.aclose()
        self.stack.stop()


class PeerServer:
    """(c) The peer: llama-cpp-python's own OpenAI-compatible server, raw completions on the same prompt."""

    name = "python -m llama_cpp.server"

    def __init__(self, max_tokens: int, prompts: dict[int, str]) -> None:
        spec = get_registry()["lumimaid"]
        weights = verified_weights(spec, get_settings().model_cache_dir)
        port = free_port()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(weights), "--host", "127.0.0.1",
                   "--port", str(port), "--n_ctx", str(spec.params.get("n_ctx", 2048)),
                   "--n_batch", str(spec.params.get("n_batch", 512)), "--n_threads", str(model_threads()),
                   # its default aborts a running stream when another request arrives: queue them instead
                   "--interrupt_requests", "False"]  # fmt: skip
        log_dir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
        self.process = ManagedProcess("llama-cpp-server", command, log_dir).start()
        self.process.wait_until(lambda: port_open(port), 120, "ready")
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300)
        self.max_tokens = max_tokens
        self.prompts = prompts

    async def stream_one(self, number: int) -> AsyncIterator[str]:
        body = {
            "prompt": self.prompts[number],
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "stream": True,
        }
        async with self.client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                yield json.loads(line[6:])["choices"][0]["text"]

    async def close(self) -> None:
        await self.client.aclose()
        self.process.stop()


def model_threads() -> int:
    """The thread count our worker gives llama.cpp (workers/runtimes/llama_cpp.py), for the peer too."""
    return get_registry()["lumimaid"].params.get("n_threads") or os.cpu_count() or 1
