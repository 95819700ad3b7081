"""The batch item task: a thin shell around workers.batch_job."""

from celery import Task

from schemas.jobs import BATCH_ITEM_TASK, ChatJob
from settings import get_settings
from tasks.app import app
from workers import process_state
from workers.batch_job import run_batch_item


@app.task(name=BATCH_ITEM_TASK, bind=True)
def generate_batch_item(self: Task, batch_id: str, job: dict) -> None:
    run_batch_item(
        batch_id,
        ChatJob.model_validate(job),
        process_state.redis_client(),
        self.request.hostname or "",
        get_settings().job_log_ttl_s,
    )
