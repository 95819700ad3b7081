"""Refuse a prompt that cannot fit its model's context window in the API, before it is enqueued.

The worker refuses such a prompt too (`prompt_too_long`), but only once the job has waited its turn
and the worker has tokenized it: a 10 MB prompt held a worker for seconds. The API holds each
model's vocabulary without its weights (llama.cpp `vocab_only`, or the transformers tokenizer) and
counts the prompt the worker would send after dropping every message it may drop, with the same
chat template and the same tokenization (runtimes/vocabulary.py). Counting is bounded: no
token stands for more bytes than the vocabulary's longest, so a text longer than n_ctx times that
is refused without being tokenized at all.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from api.http.errors import ApiError
from model_registry import ModelSpec, get_registry
from prompts.context_fit import shortest_prompt
from runtimes.vocabulary import Vocabulary, load_vocabulary
from schemas.jobs import ChatJob
from settings import Settings

# One thread counts for the whole process: a flood of long prompts queues here, instead of taking
# the threads MongoDB calls run in.
_counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prompt-count")
_loads: dict[str, asyncio.Future[Vocabulary | None]] = {}


def vocabulary_of(spec: ModelSpec, settings: Settings) -> asyncio.Future[Vocabulary | None]:
    """The model's vocabulary, loaded once per process (in the background from the first call)."""
    if spec.name not in _loads:
        loop = asyncio.get_running_loop()
        _loads[spec.name] = loop.run_in_executor(_counting, load_vocabulary, spec, settings.model_cache_dir)
    return _loads[spec.name]


def preload_vocabularies(settings: Settings) -> None:
    """Start loading every model's vocabulary, so the first chat does not wait for it."""
    for spec in get_registry().values():
        vocabulary_of(spec, settings)


def _too_long(vocabulary: Vocabulary, job: ChatJob) -> str | None:
    messages = shortest_prompt(job.messages, job.context_fit)
    text_bytes = sum(len(message.content.encode("utf-8")) for message in messages)
    if text_bytes > vocabulary.n_ctx * vocabulary.longest_token_bytes:
        return (
            f"the prompt is {text_bytes} bytes, more than the {vocabulary.n_ctx} token context window holds"
        )
    tokens = len(vocabulary.prompt_tokens(messages))
    if tokens >= vocabulary.n_ctx:
        return f"the prompt is {tokens} tokens, the context window {vocabulary.n_ctx}"
    return None


async def ensure_prompt_fits(job: ChatJob, spec: ModelSpec, settings: Settings) -> None:
    """400 `max_tokens_too_large` when the reply asked for cannot fit the context window with any
    prompt (as OpenAI refuses it; else it would silently fill the window), and `prompt_too_long`
    when even the shortest prompt the worker could make leaves no room for a single token of reply."""
    vocabulary = await vocabulary_of(spec, settings)
    if vocabulary is None:  # a runtime without a tokenizer (the synthetic one)
        return
    if job.sampling.max_tokens >= vocabulary.n_ctx:
        raise ApiError(
            400,
            "max_tokens_too_large",
            f"max_tokens {job.sampling.max_tokens} is past the context window of {spec.name!r}: "
            f"{vocabulary.n_ctx} tokens for the prompt and the reply together; ask for at most "
            f"{vocabulary.n_ctx - 1}",
            fields=["max_tokens"],
        )
    loop = asyncio.get_running_loop()
    reason = await loop.run_in_executor(_counting, _too_long, vocabulary, job)
    if reason:
        raise ApiError(400, "prompt_too_long", f"{reason}; shorten it (nothing was enqueued)")
