"""A job's states and the legal moves between them: the table the Redis scripts of
jobs/transitions.py are given, so the rule is written once.

    (none) --open--> queued --take--> running --finish--> done | cancelled | error
                       |   ^             |  ^
                       |   +--requeue----+  +-- take again (a message redelivered by Celery)
                       +--end (no_worker, queue_timeout)--> error
                                         running --end (worker_lost, worker_timeout)--> error

`requeue`: the worker running the job is gone; the job waits for another, which takes it over and
continues the reply from the tokens its log holds.

`take` also counts the job's attempts: the running attempt is the only writer of its events (a worker
that wakes up after its job was ended or taken again is refused at its next write). A job that killed
its worker while it ran alone (a strike), `max_attempts` times, is ended with `worker_lost` instead
of run: poison input does not take the fleet down. A batch item has no
`open` (nobody streams it): its first `take` starts from no state.
"""

from typing import Literal

from schemas.job_log import JobState

Transition = Literal["take", "emit", "finish", "end", "requeue"]

ENDED: frozenset[JobState] = frozenset({"done", "error", "cancelled"})

# Which states each transition may start from ("" is no state yet: a job never opened).
LEGAL_FROM: dict[Transition, frozenset[str]] = {
    "take": frozenset({"", "queued", "running"}),
    "emit": frozenset({"running"}),  # a token: only the running attempt's
    "finish": frozenset({"running"}),
    "end": frozenset({"", "queued", "running"}),
    "requeue": frozenset({"running"}),  # its worker is gone: the job waits for another (takeover)
}


def allowed(transition: Transition, state: str) -> bool:
    return state in LEGAL_FROM[transition]
