"""The four systems the benchmark compares on the same GGUF, prompt and greedy parameters:
(a) llama-cpp-python in this process, (b) our whole stack over HTTP/SSE, (c) the peer
`python -m llama_cpp.server` and (d) llama.cpp's C++ `llama-server --parallel N`, both over their
OpenAI endpoint, and (e) our stack with flash attention and weight repacking off. Each is
started alone and stopped after."""

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
from cli.bench.access import HEADERS, STACK_ENV
from cli.bench.environment import knobs, peer_environment
from cli.bench.llama_server import llama_server_binary
from embedded.processes import ManagedProcess, free_port, port_open
from embedded.stack import EmbeddedStack, StackConfig
from model_registry import get_registry
from runtimes.cpu_share import threads_per_worker
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.model_files import verified_weights
from schemas.chat import LumimaidRequest
from schemas.jobs import ChatMessage, SamplingParams
from settings import get_settings

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

    name = "(a) in-process llama-cpp-python"

    def __init__(self, max_tokens: int) -> None:
        spec = get_registry()["lumimaid"]
        self.runtime = LlamaCppRuntime(spec, verified_weights(spec, get_settings().model_cache_dir))
        self.sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        self.environment, self.threads = knobs(dict(os.environ)), self.runtime.n_threads

    def rendered_prompt(self, number: int) -> str:
        return self.server_prompt(messages_for(number))

    def server_prompt(self, messages: list[ChatMessage]) -> str:
        """What a raw-completion server is sent for `messages`: the rendered prompt less its BOS, which
        both servers add themselves (two BOS would make their prompt differ from ours)."""
        return self.runtime.rendered_prompt(messages).removeprefix(self.runtime.bos_text)

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

    name = "(b) our stack (HTTP/SSE)"
    model_env: dict[str, str] = {}

    def __init__(self, max_tokens: int, workers: int = 1) -> None:
        """`workers` on the `cpu` queue of this host, splitting its cores (WORKERS_PER_HOST)."""
        self.max_tokens = max_tokens
        env = {"WORKERS_PER_HOST": str(workers), **STACK_ENV, **self.model_env}
        self.threads = max(1, model_threads() // workers)
        # What a worker's llama.cpp runs with: this environment, and the thread count the worker sets.
        self.environment = knobs({**os.environ, **env, "OMP_NUM_THREADS": str(self.threads)})
        self.stack = EmbeddedStack(
            StackConfig(
                data_dir=Path(tempfile.mkdtemp(prefix="bench-stack-")),
                redis_port=free_port(),
                api_port=free_port(),
                queues=["cpu"],
                extra_env=env,
            )
        ).start(flower=False)
        for number in range(2, workers + 1):
            self.stack.start_worker("cpu", name=f"cpu-{number}")
        self.client = httpx.AsyncClient(base_url=self.stack.api_url, timeout=300, headers=HEADERS)

    async def stream_one(self, number: int) -> AsyncIterator[str]:
        async for piece in self.stream_body(request_body(number, self.max_tokens)):
            yield piece

    async def stream_body(self, body: dict, headers: dict | None = None) -> AsyncIterator[str]:
        """The reply to one /Lumimaid_stream request, piece by piece; its response headers (the
        conversation's id) are copied into `headers` when given."""
        async with aconnect_sse(self.client, "POST", "/Lumimaid_stream", json=body) as source:
            if headers is not None:
                headers.update(source.response.headers)
            async for event in source.aiter_sse():
                if event.event == "token":
                    yield json.loads(event.data)["text"]
                elif event.event == "error":
                    raise RuntimeError(event.data)

    async def close(self) -> None:
        await self.client.aclose()
        self.stack.stop()


class PlainKernelsStack(Stack):
    """(e) Our service with llama.cpp's flash attention and CPU weight repacking off (both on by
    default): what the two are worth, side by side with (b)."""

    name = "(e) our stack, FA and repack off"
    model_env = {"MODEL__LUMIMAID__PARAMS__FLASH_ATTN": "false", "MODEL__LUMIMAID__PARAMS__REPACK": "false"}


class CompletionServer:
    """A server with an OpenAI `/v1/completions` endpoint, sent the rendered prompt of each request."""

    name = ""

    def __init__(self, command: list[str], port: int, max_tokens: int, prompts: dict[int, str]) -> None:
        log_dir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
        env = peer_environment()  # as its users run it: none of our knobs, its own defaults
        self.environment, self.threads = knobs(env), model_threads()
        self.process = ManagedProcess(Path(command[0]).name, command, log_dir, env=env).start()
        base_url = f"http://127.0.0.1:{port}"
        self.process.wait_until(lambda: port_open(port) and self.ready(base_url), 120, "ready")
        # A new connection per request: llama-server (cpp-httplib) closes the connection after each
        # streamed response without saying so (no `Connection: close`), and a pooled connection
        # reused after that fails with "Server disconnected without sending a response".
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=600, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.max_tokens = max_tokens
        self.prompts = prompts

    def ready(self, base_url: str) -> bool:
        return True

    async def stream_one(self, number: int) -> AsyncIterator[str]:
        async for piece in self.stream_prompt(self.prompts[number]):
            yield piece

    async def stream_prompt(self, prompt: str) -> AsyncIterator[str]:
        body = {"prompt": prompt, "max_tokens": self.max_tokens, "temperature": 0, "stream": True}
        async with self.client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                yield json.loads(line[6:])["choices"][0]["text"]

    async def close(self) -> None:
        await self.client.aclose()
        self.process.stop()


class PeerServer(CompletionServer):
    """(c) The peer: llama-cpp-python's own OpenAI-compatible server, raw completions on the same prompt."""

    name = "(c) python -m llama_cpp.server"

    def __init__(self, max_tokens: int, prompts: dict[int, str]) -> None:
        spec = get_registry()["lumimaid"]
        port = free_port()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(weights()), "--host", "127.0.0.1",
                   "--port", str(port), "--n_ctx", str(spec.params.get("n_ctx", 2048)),
                   "--n_batch", str(spec.params.get("n_batch", 512)), "--n_threads", str(model_threads()),
                   # its default aborts a running stream when another request arrives: queue them instead
                   "--interrupt_requests", "False"]  # fmt: skip
        super().__init__(command, port, max_tokens, prompts)


class LlamaServer(CompletionServer):
    """(d) llama.cpp's own C++ server with `--parallel` slots (continuous batching), built from the
    llama.cpp that llama-cpp-python vendors (cli/bench/llama_server.py), as many slots as our engine."""

    name = "(d) llama-server --parallel"

    def __init__(self, max_tokens: int, prompts: dict[int, str]) -> None:
        spec = get_registry()["lumimaid"]
        port = free_port()
        n_ctx = spec.params.get("n_ctx", 2048)
        command = [str(llama_server_binary()), "--model", str(weights()), "--host", "127.0.0.1",
                   "--port", str(port), "--parallel", str(spec.max_sequences),
                   "--ctx-size", str(n_ctx * spec.max_sequences), "--batch-size", str(spec.params.get("n_batch", 512)),
                   "--threads", str(model_threads()), "--threads-batch", str(model_threads()), "--no-webui"]  # fmt: skip
        super().__init__(command, port, max_tokens, prompts)

    def ready(self, base_url: str) -> bool:
        """It listens (and answers 503) while it loads the model."""
        return httpx.get(f"{base_url}/health").status_code == 200


def weights() -> Path:
    spec = get_registry()["lumimaid"]
    return verified_weights(spec, get_settings().model_cache_dir)


def model_threads() -> int:
    """The thread count our worker gives llama.cpp (runtimes/llama_cpp.py), for the peer too."""
    return get_registry()["lumimaid"].params.get("n_threads") or threads_per_worker(get_settings())
