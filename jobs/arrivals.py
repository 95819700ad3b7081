"""Whether jobs are on their way to a queue's workers: admitted by the API moments ago and not taken
by a worker yet (the queue's admission set, api/streams/backpressure.py).

An idle engine asks before it starts the job it has (runtimes/sequences.py, `EngineThread._gather`):
the API takes the requests of clients who sent at once a few milliseconds apart, so the first
reaches the engine while the others are still on their way, and without waiting for them it would be
prefilled alone and theirs a pass later. Only recent admissions count: a job admitted longer ago and
still not taken waits for room on a busy worker (or its API process died before enqueueing it), and
an idle engine should not wait for it. The scores are the API's clock: a worker whose clock is off by
more than ON_THE_WAY_S sees no job on its way when it is ahead (its engine starts what it has, as
without this) and an old one for that much longer when it is behind (a wait of GATHER_S at most).
"""

import time

import redis

from jobs.keys import admission_key

# How recently a job not yet taken must have been admitted to count as on its way: a request's path
# from admission to a worker's task takes milliseconds (its Celery message, the worker's pickup).
ON_THE_WAY_S = 0.2


def jobs_on_the_way(client: redis.Redis, queue: str) -> bool:
    """Whether a job was admitted to `queue` in the last ON_THE_WAY_S and no worker has taken it yet;
    False when Redis does not answer (the engine then starts what it has)."""
    try:
        return client.zcount(admission_key(queue), time.time() - ON_THE_WAY_S, "+inf") > 0
    except redis.RedisError:
        return False
