"""Celery configuration: the Redis broker, one queue per device, one job at a time per model worker."""

from kombu import Queue

from jobs.keys import PRIORITY_SEP, PRIORITY_STEPS
from model_registry import queues
from settings import Settings, get_settings

broker_url = get_settings().redis_url
broker_connection_retry_on_startup = True
# A worker outlives a Redis restart: it reconnects however long Redis is away (by setting: Celery's
# default gives up after 100 tries), and the jobs it was running when the connection dropped end
# without killing it (by code: kombu's Redis transport does not allow it, tasks/broker_transport.py).
# Only in a worker: Flower and the API keep the plain `redis` transport, whose URL scheme they read.
broker_connection_max_retries = None
if get_settings().worker_queue:
    broker_transport = "tasks.broker_transport:Transport"

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


def longest_job_s(settings: Settings, queue: str) -> float:
    """How long the longest job of a queue may run: a generation, or a whole fine-tuning run."""
    default = (
        settings.longest_training_job_s if queue == settings.training_queue else settings.longest_chat_job_s
    )
    return settings.longest_job_s.get(queue, default)


def visibility_timeout_s(settings: Settings) -> float:
    """Seconds an unacknowledged job stays with its worker before the broker gives it to another.

    kombu's Redis transport keeps every queue's unacknowledged messages in one set, and whichever
    worker sweeps it first gives back those older than its own timeout: a per-queue value would let a
    chat worker redeliver a long fine-tuning run. So all processes share one timeout, set above the
    longest job of any queue (a killed worker's job comes back after it; fine-tuning runs also hold a
    claim, finetune/claim.py, so a copy that still slips through does not train twice).
    """
    if settings.broker_visibility_timeout_s is not None:
        return settings.broker_visibility_timeout_s
    every_queue = [queue.name for queue in task_queues]
    return 1.5 * max(longest_job_s(settings, queue) for queue in every_queue)


VISIBILITY_TIMEOUT_S = visibility_timeout_s(get_settings())

# Priorities: kombu keeps each queue as one Redis list per priority step and a worker pops them
# lowest number first, so a chat taken over (0) goes first, then interactive chats (3), then batch
# items (9).
# (`queue_order_strategy` only orders several queues of one worker; ours serve one queue each.)
# `sep` makes the step lists readable (`cpu:9`); Flower reads the same options to count them.
# The sweep for jobs past the visibility timeout runs every `unacked_restore_interval` seconds
# (throttle 1: each time); a tenth of the timeout, at most kombu's 10 s, keeps a short one honest.
broker_transport_options = {
    "priority_steps": PRIORITY_STEPS,
    "sep": PRIORITY_SEP,
    "visibility_timeout": VISIBILITY_TIMEOUT_S,
    "unacked_restore_interval": min(10.0, max(1.0, VISIBILITY_TIMEOUT_S / 10)),
    "unacked_restore_throttle": 1,
}
