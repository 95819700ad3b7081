"""Celery configuration: the Redis broker, one queue per device, one job at a time per model worker."""

from kombu import Queue

from model_registry import queues
from schemas.redis_keys import PRIORITY_SEP, PRIORITY_STEPS
from settings import get_settings

broker_url = get_settings().redis_url
broker_connection_retry_on_startup = True

# Tokens travel over pub/sub and replies are stored in MongoDB: no result backend.
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]

# One queue per device (routing: the model registry names each model's queue; see api/streams/enqueue.py),
# and one for LoRA fine-tuning jobs.
task_queues = [Queue(name) for name in queues()] + [Queue(get_settings().training_queue)]
task_default_queue = task_queues[0].name

# A model worker runs one generation at a time and reserves nothing beyond it, so a job waits in
# Redis (where any free worker of the queue can take it) rather than behind a busy worker.
task_acks_late = True
worker_prefetch_multiplier = 1
worker_concurrency = 1

# The pool process loads its models at start: give it time before Celery declares it dead.
worker_proc_alive_timeout = 600

# Events for Flower.
worker_send_task_events = True
task_send_sent_event = True

# Priorities: kombu keeps each queue as one Redis list per priority step and a worker pops them
# lowest number first, so interactive chats (priority 0) overtake waiting batch items (priority 9).
# (`queue_order_strategy` only orders several queues of one worker; ours serve one queue each.)
# `sep` makes the step lists readable (`cpu:9`); Flower reads the same options to count them.
broker_transport_options = {"priority_steps": PRIORITY_STEPS, "sep": PRIORITY_SEP}
