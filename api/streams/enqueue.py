"""The one place tasks are sent to Celery: chat jobs and batch items on their device's queue, fine-tuning
runs on the training queue."""

from celery import Celery

from model_registry import ModelSpec
from schemas.finetune import FINETUNE_TASK
from schemas.jobs import (
    BATCH_ITEM_TASK,
    BATCH_PRIORITY,
    CHAT_TASK,
    INTERACTIVE_PRIORITY,
    TAKEOVER_PRIORITY,
    ChatJob,
)


def enqueue_chat(
    celery_app: Celery, job: ChatJob, spec: ModelSpec, expires_s: float, takeover: bool = False
) -> None:
    """Send the job by task name on the model's queue, ahead of any batch item (a takeover ahead of
    any new chat); it expires if no worker takes it in time."""
    celery_app.send_task(
        CHAT_TASK,
        args=[job.model_dump(mode="json")],
        queue=spec.queue,
        task_id=job.job_id,
        expires=expires_s,
        priority=TAKEOVER_PRIORITY if takeover else INTERACTIVE_PRIORITY,
    )


def enqueue_batch_items(
    celery_app: Celery, batch_id: str, jobs: list[ChatJob], specs: dict[str, ModelSpec]
) -> None:
    """Send each item below every interactive chat, over one broker connection. No expiry: a batch
    waits for as long as its queue is busy (or has no worker)."""
    with celery_app.producer_or_acquire() as producer:
        for job in jobs:
            celery_app.send_task(
                BATCH_ITEM_TASK,
                args=[batch_id, job.model_dump(mode="json")],
                queue=specs[job.model].queue,
                task_id=job.job_id,
                priority=BATCH_PRIORITY,
                producer=producer,
            )


def enqueue_finetune(celery_app: Celery, run_id: str, request: dict, queue: str) -> None:
    """Send a fine-tuning run (its id is the task's) to the training queue."""
    celery_app.send_task(FINETUNE_TASK, args=[run_id, request], queue=queue, task_id=run_id)
