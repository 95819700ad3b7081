"""The Celery application shared by the API (to enqueue) and the workers (to consume)."""

from celery import Celery

app = Celery("chatbot", include=["tasks.chat", "tasks.batch", "tasks.finetune", "tasks.lifecycle"])
app.config_from_object("celeryconfig")
