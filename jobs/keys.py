"""Names of the Redis keys and channels the API and the workers share, and how long a job's keys live.

Only the jobs package writes a job's keys (jobs/transitions.py, jobs/log.py); the rest of the house
reads or names them through here.
"""

PREFIX = "chatbot"

# A job's state outlives any redelivery of its message (kombu's Redis transport restores an unacked
# message after its visibility timeout), so a redelivered message of an ended job is never run again.
STATE_TTL_S = 24 * 3600
# The client's "stop" lasts longer than any job runs.
CANCEL_FLAG_TTL_S = 3600


def job_channel(job_id: str) -> str:
    """Pub/sub channel carrying a job's events."""
    return f"{PREFIX}:job:{job_id}:events"


def job_cancel_key(job_id: str) -> str:
    """Set by the API when the client has gone; the worker stops at its next token."""
    return f"{PREFIX}:job:{job_id}:cancel"


def job_state_key(job_id: str) -> str:
    """Hash of the job's state machine (jobs/states.py): `state`, `attempt` (how many times a worker
    has taken it; the running attempt is the only one allowed to write), `next_id` (its next event id)."""
    return f"{PREFIX}:job:{job_id}:state"


def job_turn_key(job_id: str) -> str:
    """Set by the API once the user's turn of the job is stored; the worker stores the reply after it."""
    return f"{PREFIX}:job:{job_id}:turn"


# Sorted set of the jobs running now (taken by a worker, not ended), scored by when they were taken:
# what the recovery sweep looks at for a job whose worker is gone and that no stream took over.
RUNNING_JOBS_KEY = f"{PREFIX}:jobs:running"


def workers_key(queue: str) -> str:
    """Sorted set of the live worker processes of a queue, scored by their last heartbeat."""
    return f"{PREFIX}:workers:{queue}"


# Celery's Redis transport keeps one list per queue and priority step: priority 0 in the list named
# after the queue, step p in `<queue><sep><p>`. A worker pops the steps in order, so a lower
# number is served first (kombu's own default steps; see celeryconfig.broker_transport_options).
PRIORITY_STEPS = [0, 3, 6, 9]
PRIORITY_SEP = ":"


def queue_keys(queue: str, up_to_priority: int = PRIORITY_STEPS[-1]) -> list[str]:
    """The Redis lists holding a queue's waiting jobs of priority `up_to_priority` or more urgent."""
    return [
        queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"
        for step in PRIORITY_STEPS
        if step <= up_to_priority
    ]


def job_log_key(job_id: str) -> str:
    """Redis stream holding a job's events for a while (resume with Last-Event-ID, GET /jobs/{id})."""
    return f"{PREFIX}:job:{job_id}:log"


def admission_key(queue: str) -> str:
    """Sorted set of the interactive jobs admitted to a queue and not yet started, scored by the
    time they were admitted (api/streams/backpressure.py)."""
    return f"{PREFIX}:queue:{queue}:admitted"


def quota_jobs_key(quota: str) -> str:
    """Sorted set of an API key's jobs queued or running, scored by when their count lapses
    (api/streams/quotas.py): its concurrent-jobs quota."""
    return f"{PREFIX}:quota:{quota}:jobs"


def quota_queued_key(quota: str) -> str:
    """Sorted set of an API key's jobs still queued, scored by when their count lapses."""
    return f"{PREFIX}:quota:{quota}:queued"


def quota_tokens_key(quota: str) -> str:
    """Hash of an API key's queued jobs to their max_tokens: its queued-tokens quota."""
    return f"{PREFIX}:quota:{quota}:queued-tokens"
