"""The one place a chat job is put on its device's Celery queue."""

from celery import Celery

from model_registry import ModelSpec
from schemas.jobs import CHAT_TASK, INTERACTIVE_PRIORITY, ChatJob


def enqueue_chat(celery_app: Celery, job: ChatJob, spec: ModelSpec, expires_s: float) -> None:
    """Send the job by task name on the model's queue, ahead of any batch item; it expires if no
    worker takes it in time."""
    celery_app.send_task(
        CHAT_TASK,
        args=[job.model_dump(mode="json")],
        queue=spec.queue,
        task_id=job.job_id,
        expires=expires_s,
        priority=INTERACTIVE_PRIORITY,
    )
