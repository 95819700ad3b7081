"""One chat job on a worker: generate with the resident model, publish each token, store the reply.

Plain code with its collaborators passed in, so it runs and tests without Celery.
"""

import logging
from collections.abc import Callable

from prompts.context_fit import fit_to_window
from schemas.events import Usage
from schemas.jobs import ChatJob
from workers.publisher import EventPublisher
from workers.resident import ModelNotLoadedError, runtime_for
from workers.runtime import PromptTooLongError

log = logging.getLogger(__name__)

# (conversation_id, job_id, content, status, finish_reason, usage) -> stored message id
StoreReply = Callable[[str, str, str, str, str, dict], str]

ERROR_CODES: dict[type[Exception], str] = {
    PromptTooLongError: "prompt_too_long",
    ModelNotLoadedError: "model_not_loaded",
}


def run_chat_job(job: ChatJob, publisher: EventPublisher, store_reply: StoreReply, worker: str) -> None:
    publisher.started(worker)
    pieces: list[str] = []

    def on_text(text: str) -> bool:
        pieces.append(text)
        return not publisher.token(text)

    try:
        runtime = runtime_for(job.model)
        budget = runtime.n_ctx - job.sampling.max_tokens
        messages = fit_to_window(job.messages, job.context_fit, budget, runtime.prompt_tokens)
        result = runtime.generate(messages, job.sampling, on_text)
    except Exception as exc:
        code = ERROR_CODES.get(type(exc), "generation_failed")
        log.exception("job %s failed (%s)", job.job_id, code)
        try:
            _store(store_reply, job, "".join(pieces), "error", "error", Usage())
        except Exception:
            log.exception("job %s: the partial reply could not be stored", job.job_id)
        publisher.error(code, str(exc))
        return

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
    publisher.done(result.finish_reason, usage, message_id)


def _store(
    store_reply: StoreReply, job: ChatJob, text: str, status: str, finish_reason: str, usage: Usage
) -> str | None:
    if job.conversation_id is None:
        return None
    return store_reply(job.conversation_id, job.job_id, text, status, finish_reason, usage.model_dump())
