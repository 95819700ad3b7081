"""One chat job on a worker: generate with the resident model, publish each token, store the reply.

Plain code with its collaborators passed in, so it runs and tests without Celery.
"""

import logging
import time
from collections.abc import Callable

from prompts.context_fit import fit_to_window
from schemas.events import Usage
from schemas.jobs import ChatJob
from workers import metrics
from workers.publisher import EventPublisher
from workers.runtimes.protocol import GenerationResult, PromptTooLongError
from workers.runtimes.resident import ModelNotLoadedError, runtime_for

log = logging.getLogger(__name__)

# (job, content, status, finish_reason, usage) -> the stored message's id, or None when none is kept.
# Where a reply goes is the caller's choice: a chat's conversation, a batch item.
StoreReply = Callable[[ChatJob, str, str, str, dict], str | None]

ERROR_CODES: dict[type[Exception], str] = {
    PromptTooLongError: "prompt_too_long",
    ModelNotLoadedError: "model_not_loaded",
}


def run_chat_job(job: ChatJob, publisher: EventPublisher, store_reply: StoreReply, worker: str) -> None:
    cancelled_while_queued = publisher.started(worker)
    pieces: list[str] = []

    def on_text(text: str) -> bool:
        pieces.append(text)
        return not publisher.token(text)

    started = time.perf_counter()
    try:
        if cancelled_while_queued:  # its client is gone: free the worker without touching the model
            result = GenerationResult("cancelled", 0, 0)
        else:
            runtime = runtime_for(job.model)
            budget = runtime.n_ctx - job.sampling.max_tokens
            messages = fit_to_window(job.messages, job.context_fit, budget, runtime.prompt_tokens)
            result = runtime.generate(messages, job.sampling, on_text)
    except Exception as exc:
        code = ERROR_CODES.get(type(exc), "generation_failed")
        metrics.JOBS.labels(job.model, "error").inc()
        log.exception("job %s failed (%s)", job.job_id, code)
        try:
            _store(store_reply, job, "".join(pieces), "error", "error", Usage())
        except Exception:
            log.exception("job %s: the partial reply could not be stored", job.job_id)
        publisher.error(code, str(exc))
        return

    metrics.GENERATION_SECONDS.labels(job.model).observe(time.perf_counter() - started)
    metrics.TOKENS.labels(job.model).inc(result.completion_tokens)
    metrics.JOBS.labels(job.model, result.finish_reason).inc()
    metrics.record_device_memory()
    usage = Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    status = "cancelled" if result.finish_reason == "cancelled" else "complete"
    try:
        message_id = _store(store_reply, job, "".join(pieces), status, result.finish_reason, usage)
    except Exception as exc:
        log.exception("job %s: the reply could not be stored", job.job_id)
        publisher.error("storage_failed", f"the reply was generated but could not be stored: {exc}")
        return
    publisher.done(result.finish_reason, usage, message_id, job.sources)


def _store(
    store_reply: StoreReply, job: ChatJob, text: str, status: str, finish_reason: str, usage: Usage
) -> str | None:
    return store_reply(job, text, status, finish_reason, usage.model_dump())
