"""The chat task: a thin shell around workers.chat_job.

A job the worker's engine has no room for yet goes back to its queue (workers/slot_gate.py).
Acked late and rejected (so requeued) when its pool process dies; a job whose worker is lost is sent
again by its stream (api/streams/takeover.py). Either way the next worker continues the reply from
the tokens its log holds, at most JOB_MAX_ATTEMPTS workers in all (see workers/chat_job.py).

A job cancelled by its client (or a batch item of a cancelled batch) ends as `CANCELLED` in Celery's task events (what Flower shows), not
`SUCCESS`: the task sends a `task-cancelled` event and ends with `Ignore` (acked, no success event,
no result stored), since a success event would outrank any other state in Flower.
"""

from celery import Task
from celery.exceptions import Ignore, Reject

from model_registry import get_registry
from schemas.jobs import CHAT_TASK, ChatJob
from settings import get_settings
from tasks.app import app
from workers import process_state
from workers.chat_job import run_chat_job
from workers.job_handle import JobHandle
from workers.slot_gate import chat_share, room_for


@app.task(name=CHAT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def generate_chat(self: Task, job: dict) -> None:
    chat_job = ChatJob.model_validate(job)
    settings = get_settings()
    queue = get_registry()[chat_job.model].queue
    client = process_state.redis_client()
    share = chat_share(chat_job)
    with room_for(client, chat_job, share) as room:
        if not room:
            raise Reject("no slot for it yet", requeue=True)
        handle = JobHandle(client, chat_job.job_id, settings.job_log_ttl_s, queue, chat_job.quota)
        finish_reason = run_chat_job(
            chat_job, handle, "chat", self.request.hostname or "", settings.job_max_attempts, share
        )
    end_as(self, finish_reason)


def end_as(task: Task, finish_reason: str | None) -> None:
    """A cancelled job's task ends CANCELLED in the task events, instead of SUCCESS."""
    if finish_reason == "cancelled":
        task.send_event("task-cancelled")
        raise Ignore()
