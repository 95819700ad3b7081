"""Whether a worker starts a job it has just received, waits for room, or leaves it in its queue.

A batching worker takes a few more jobs than its engine has slots (WORKER_WAITING_JOBS), so that
another key's job reaches the engine while one key holds every slot, and takes a slot from it
(runtimes/fair_share.py). A job that cannot start yet (its key holds its fair share already, or it
is a batch item and every slot is a chat's or its batch's) waits for room on its thread, still
`queued`, in arrival order. When every extra thread holds such a job, the one that came last goes
back to its queue each second (behind the jobs waiting there), so the next message, maybe another
key's chat that can start at once, reaches the worker; the earlier ones keep their turn. Should the
worker die meanwhile, the recovery sweep gives their messages back (api/streams/takeover.py).
"""

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis

from jobs.transitions import cancel_requested, still_wanted
from runtimes.fair_share import Share
from runtimes.resident import ModelNotLoadedError, runtime_for
from schemas.jobs import ChatJob
from settings import get_settings

# How often a waiting job looks again at its cancel flag and, when every extra thread waits, whether
# it is the one to give back.
WAIT_FOR_ROOM_S = 1.0


class _Waiting:
    """The jobs of this process waiting for room, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[str] = []

    @contextmanager
    def entered(self, job_id: str) -> Iterator[None]:
        with self._lock:
            self._jobs.append(job_id)
        try:
            yield
        finally:
            with self._lock:
                self._jobs.remove(job_id)

    def gives_way(self, job_id: str, threads: int) -> bool:
        """Whether `job_id` should go back to its queue: every extra thread waits, and it came last."""
        with self._lock:
            return len(self._jobs) >= threads and self._jobs[-1] == job_id


_waiting = _Waiting()


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
    threads = get_settings().worker_waiting_jobs

    def keep_waiting() -> bool:
        return still_wanted(client, job.job_id) and not _waiting.gives_way(job.job_id, threads)

    with ExitStack() as slot:
        with _waiting.entered(job.job_id):
            room = slot.enter_context(runtime.slot_for(share, WAIT_FOR_ROOM_S, keep_waiting))
        yield room or not still_wanted(client, job.job_id)
