"""One chat job on a worker: generate with the resident model, publish each token, store the reply.

Plain code with its collaborators passed in, so it runs and tests without Celery.

A job whose message is delivered again (its worker was lost; see tasks/) runs again from the start,
unless it has already ended, and at most `max_attempts` times. A reply MongoDB does not take is
retried with a backoff, then kept in the outbox (workers/reply_outbox.py) and stored once MongoDB is
back: the client still gets `done` (its `message_id` null).
"""

import logging
import time
from contextlib import nullcontext
from typing import Literal

import redis
from pymongo.errors import PyMongoError

from jobs.log import ReplySoFar
from jobs.transitions import JobFenced, Taken
from prompts.context_fit import fit_to_window
from runtimes.fair_share import Share
from runtimes.metrics import record_device_memory
from runtimes.protocol import GenerationResult, InvalidSamplingError, PromptTooLongError, Resume
from runtimes.resident import ModelNotLoadedError, runtime_for
from schemas.events import ErrorData, JobErrorCode, TokenLogprob, Usage
from schemas.jobs import ChatJob
from workers import fault_injection, metrics, reply_outbox
from workers.heartbeat import process_member
from workers.job_handle import JobHandle
from workers.publisher import EventPublisher
from workers.slot_gate import chat_share
from workers.takeover_gate import takeover_window

log = logging.getLogger(__name__)

ERROR_CODES: dict[type[Exception], JobErrorCode] = {
    PromptTooLongError: "prompt_too_long",
    ModelNotLoadedError: "model_not_loaded",
    InvalidSamplingError: "invalid_sampling",
    redis.RedisError: "redis_unavailable",  # a token could not be published: the stream has ended
}

# How long a finished reply waits for the API to store its user's turn (normally milliseconds).
TURN_WAIT_S = 30.0
# Waits between tries of a reply's write while MongoDB fails (then the outbox takes it).
STORE_BACKOFF_S = (0.5, 1.0)


def run_chat_job(
    job: ChatJob,
    handle: JobHandle,
    store: Literal["chat", "batch_item"],
    worker: str,
    max_attempts: int = 1,
    share: Share | None = None,
) -> str | None:
    """`store` names where the reply goes (reply_outbox.Reply): a chat's conversation, a batch item.
    `share`: whose slot it takes in the engine (a chat: its API key's). The job's finish reason
    (`error` for a failure), None when it was not run or stopped being this worker's."""
    taken, so_far, publisher = handle.take(max_attempts, worker, process_member())
    if taken.outcome == "ended":
        log.info("job %s has already ended: not run again", job.job_id)
        return None
    if taken.outcome == "exhausted":  # what its workers said is kept, marked `error`
        metrics.POISON_ENDS.labels(job.model).inc()
        message = (
            f"the job's worker died {taken.attempt - 1} time(s) running it (poison input?); not run again"
        )
        error = ErrorData(code="worker_lost", message=message)
        _finish_with_error(job, handle, publisher, store, error, so_far.text)
        return "error"
    pieces: list[str] = [so_far.text]
    started = time.perf_counter()
    try:
        share = share or chat_share(job)
        result = _generate(job, handle, taken, so_far, publisher, pieces, share)
    except JobFenced:
        publisher.fenced = True
        result = None
    except Exception as exc:
        code = next(
            (code for kind, code in ERROR_CODES.items() if isinstance(exc, kind)), "generation_failed"
        )
        log.exception("job %s failed (%s)", job.job_id, code)
        error = ErrorData(code=code, message=str(exc))
        _finish_with_error(job, handle, publisher, store, error, "".join(pieces))
        return "error"
    if result is None or publisher.fenced:  # the API ended it, or another attempt has it, which stores it
        return None

    metrics.GENERATION_SECONDS.labels(job.model).observe(time.perf_counter() - started)
    metrics.TOKENS.labels(job.model).inc(result.completion_tokens)
    metrics.JOBS.labels(job.model, result.finish_reason).inc()
    record_device_memory()
    usage = Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    status = "cancelled" if result.finish_reason == "cancelled" else "complete"
    message_id = _store(handle, store, job, "".join(pieces), status, result.finish_reason, usage)
    publisher.done(result.finish_reason, usage, message_id, job.sources)
    return result.finish_reason


def _generate(
    job: ChatJob,
    handle: JobHandle,
    taken: Taken,
    so_far: ReplySoFar,
    publisher: EventPublisher,
    pieces: list[str],
    share: Share,
) -> GenerationResult:
    """Generate the reply (a takeover continues it from the token ids its log holds, in its window:
    workers/takeover_gate.py), publishing each piece and keeping it in `pieces`."""
    if taken.cancelled:  # its client is gone: free the worker without touching the model
        return GenerationResult("cancelled", 0, 0)
    resume = Resume(so_far.token_ids, so_far.text) if taken.attempt > 1 else None
    with takeover_window() if resume else nullcontext(lambda: None) as end_window:
        if resume:
            metrics.TAKEOVERS.labels(job.model).inc()
            log.info(
                "job %s taken over (attempt %d) after %d tokens", job.job_id, taken.attempt, so_far.tokens
            )
            handle.runs_alone(taken.attempt)

        def on_text(
            text: str, logprobs: list[TokenLogprob] | None = None, token_ids: list[int] | None = None
        ) -> bool:
            fault_injection.before_token(job, so_far.tokens + len(pieces) - 1)
            pieces.append(text)
            keep_going = not publisher.token(text, logprobs, token_ids)
            end_window()
            return keep_going

        runtime = runtime_for(job.model)
        budget = runtime.n_ctx - job.sampling.max_tokens
        messages = fit_to_window(job.messages, job.context_fit, budget, runtime.prompt_tokens)
        return runtime.generate(
            messages, job.sampling, on_text, resume=resume, share=share, still_wanted=handle.still_wanted
        )


def _finish_with_error(
    job: ChatJob,
    handle: JobHandle,
    publisher: EventPublisher,
    store: Literal["chat", "batch_item"],
    error: ErrorData,
    text: str,
) -> None:
    """The one path of a failed job, chat or batch item: its partial reply stored with the error,
    then the error event."""
    if publisher.fenced:
        return
    metrics.JOBS.labels(job.model, "error").inc()
    try:
        _store(handle, store, job, text, "error", "error", Usage(), error)
    except Exception:
        log.exception("job %s: the partial reply could not be stored", job.job_id)
    publisher.error(error.code, error.message)


def _store(
    handle: JobHandle,
    store: Literal["chat", "batch_item"],
    job: ChatJob,
    text: str,
    status: str,
    finish_reason: str,
    usage: Usage,
    error: ErrorData | None = None,
) -> str | None:
    """The stored message's id; None when none is kept, or when the outbox holds the reply for now."""
    if job.follows_turn:
        handle.wait_for_turn(TURN_WAIT_S)
    reply = reply_outbox.Reply(store, job, text, status, finish_reason, usage.model_dump(), error)
    for backoff_s in (*STORE_BACKOFF_S, None):
        try:
            return reply.store()
        except PyMongoError as exc:
            log.warning("job %s: the reply could not be stored (%s)", job.job_id, exc)
            if backoff_s is None:
                break
            time.sleep(backoff_s)
    reply_outbox.put(handle.client, reply)
    return None
