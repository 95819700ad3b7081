"""The batch item task: a thin shell around workers.batch_job.

A batch item waits for room like a chat (workers/slot_gate.py), after every chat. At least once: acked late and rejected (so requeued) when its worker process dies, it runs again
from the start, at most JOB_MAX_ATTEMPTS times; a finished item is never run again.
"""

from celery import Task
from celery.exceptions import Reject

from schemas.jobs import BATCH_ITEM_TASK, ChatJob
from settings import get_settings
from tasks.app import app
from tasks.chat import end_as
from workers import process_state
from workers.batch_job import run_batch_item
from workers.slot_gate import batch_share, room_for


@app.task(name=BATCH_ITEM_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def generate_batch_item(self: Task, batch_id: str, job: dict) -> None:
    settings = get_settings()
    chat_job, client = ChatJob.model_validate(job), process_state.redis_client()
    with room_for(client, chat_job, batch_share(batch_id)) as room:
        if not room:
            raise Reject("no slot for it yet", requeue=True)
        finish_reason = run_batch_item(
            batch_id,
            chat_job,
            client,
            self.request.hostname or "",
            settings.job_log_ttl_s,
            settings.job_max_attempts,
        )
    end_as(self, finish_reason)
