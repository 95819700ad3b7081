"""Whether a worker starts a job it has just received, or leaves it in its queue for now.

A batching worker takes a few more jobs than its engine has slots (WORKER_WAITING_JOBS), so that
another key's job reaches the engine while one key holds every slot, and takes a slot from it
(runtimes/fair_share.py). A job that would only wait there (its key holds its fair share already, or
it is a batch item and every slot is a chat's or its batch's) is given back to its queue after a
short wait instead: it stays `queued`, a worker that dies holds no waiting job, and the extra task
threads stay free for the jobs that can start, a chat above all.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from jobs.transitions import cancel_requested
from runtimes.fair_share import Share
from runtimes.resident import ModelNotLoadedError, runtime_for
from schemas.jobs import ChatJob

# How long a received job waits for room before it goes back to its queue (then another thread, of
# this worker or another, takes the next message: a chat first, by queue priority).
WAIT_FOR_ROOM_S = 1.0


def chat_share(job: ChatJob) -> Share:
    """A chat counts against its API key; a job without one (quotas off) against itself."""
    return Share(job.quota or job.job_id)


def batch_share(batch_id: str) -> Share:
    """A batch's items share one share between them, after every chat."""
    return Share(f"batch:{batch_id}", batch=True)


@contextmanager
def room_for(client: redis.Redis, job: ChatJob, share: Share) -> Iterator[bool]:
    """True when the job should run now, in the block: there is room for it (held for it until the
    block ends), or it was cancelled or its model is not here (its own path ends it at once). False:
    give it back to its queue."""
    try:
        runtime = None if cancel_requested(client, job.job_id) else runtime_for(job.model)
    except (ModelNotLoadedError, redis.RedisError):
        runtime = None
    if runtime is None:
        yield True
        return
    with runtime.slot_for(share, WAIT_FOR_ROOM_S) as room:
        yield room
