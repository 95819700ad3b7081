"""The chat task: a thin shell around workers.chat_job."""

from celery import Task

from mongo.conversations import save_job_reply
from schemas.jobs import CHAT_TASK, ChatJob
from settings import get_settings
from tasks.app import app
from workers import process_state
from workers.chat_job import run_chat_job
from workers.publisher import EventPublisher


@app.task(name=CHAT_TASK, bind=True)
def generate_chat(self: Task, job: dict) -> None:
    chat_job = ChatJob.model_validate(job)
    publisher = EventPublisher(process_state.redis_client(), chat_job.job_id, get_settings().job_log_ttl_s)
    run_chat_job(chat_job, publisher, save_job_reply, worker=self.request.hostname or "")
