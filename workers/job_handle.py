"""The worker's handle on one job: take it from its message, read what its log holds, wait for the
user's turn, and publish through an EventPublisher. Every state change goes through jobs/transitions.py.
"""

import logging
import time
from dataclasses import dataclass

import redis

from jobs.log import ReplySoFar, read_log, reply_so_far
from jobs.transitions import Taken, runs_alone, still_wanted, take, turn_stored_or_cancelled
from schemas.events import StartedData
from workers.publisher import EventPublisher

log = logging.getLogger(__name__)

TURN_POLL_S = 0.02
NOTHING_YET = ReplySoFar("", [], 0)  # a first attempt's: its log holds no reply yet


@dataclass
class JobHandle:
    client: redis.Redis
    job_id: str
    log_ttl_s: int
    queue: str | None = None  # the queue that admitted the job (api/streams/backpressure.py)
    quota: str | None = None  # the API key whose quotas count it (api/streams/quotas.py)

    def take(
        self, max_attempts: int, worker: str, process: str | None
    ) -> tuple[Taken, ReplySoFar, EventPublisher]:
        """Take the job now that a worker has its message: what its log holds of the reply (a takeover
        continues it), and the publisher of this attempt, numbering on from there."""
        taken = take(
            self.client,
            self.job_id,
            max_attempts=max_attempts,
            started=StartedData(worker=worker, process=process),
            log_ttl_s=self.log_ttl_s,
            queue=self.queue,
            quota=self.quota,
        )
        so_far = reply_so_far(read_log(self.client, self.job_id)) if taken.attempt > 1 else NOTHING_YET
        publisher = EventPublisher(
            self.client, self.job_id, taken.attempt, taken.next_id, self.log_ttl_s, self.quota, so_far.tokens
        )
        return taken, so_far, publisher

    def still_wanted(self) -> bool:
        """Whether nobody has asked the job to stop (a stream paused for another key's sequence hears
        of its client's leaving here, having no token to publish)."""
        return still_wanted(self.client, self.job_id)

    def runs_alone(self, attempt: int) -> None:
        """This attempt is in its takeover window (workers/takeover_gate.py): a strike if its worker
        dies before it streams a token."""
        runs_alone(self.client, self.job_id, attempt)

    def wait_for_turn(self, timeout_s: float) -> None:
        """Until the API has stored the user's turn (or given up on the job: its cancel flag), so a
        short reply is not stored before, or instead of, the turn it answers."""
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and not turn_stored_or_cancelled(self.client, self.job_id):
                time.sleep(TURN_POLL_S)
        except redis.RedisError:
            log.warning(
                "job %s: Redis unavailable; storing the reply without waiting for its turn", self.job_id
            )
