"""Names of the Redis keys and channels the API and the workers share."""

PREFIX = "chatbot"


def job_channel(job_id: str) -> str:
    """Pub/sub channel carrying a job's events."""
    return f"{PREFIX}:job:{job_id}:events"


def job_cancel_key(job_id: str) -> str:
    """Set by the API when the client has gone; the worker stops at its next token."""
    return f"{PREFIX}:job:{job_id}:cancel"


def workers_key(queue: str) -> str:
    """Sorted set of the live worker processes of a queue, scored by their last heartbeat."""
    return f"{PREFIX}:workers:{queue}"


def job_log_key(job_id: str) -> str:
    """Redis stream holding a job's events for a while (resume with Last-Event-ID, GET /jobs/{id})."""
    return f"{PREFIX}:job:{job_id}:log"
