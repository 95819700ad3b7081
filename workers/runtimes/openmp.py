"""How llama.cpp's (and torch's) OpenMP threads wait at a barrier: spin a little, then sleep.

llama.cpp's CPU threads meet at a barrier after every operation of the graph, hundreds of times a
token. libgomp's default is to spin ~3 ms (GOMP_SPINCOUNT 300,000) before sleeping: fastest on
dedicated cores, but when the cores are shared (our API, Redis and Celery threads beside the model,
another worker, a busy neighbour) a thread spinning at a barrier burns the time slice the thread it
waits for needs. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs a futex wake per barrier: half
llama-server's speed on a quiet machine. A short spin keeps both: a barrier whose peer is running
is met within the spin, and one whose peer was descheduled costs at most the spin (README, "Where
llama.cpp runs", has the measurements). An OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment wins.

libgomp reads these once, when it loads, so this must run before anything imports llama_cpp (or torch).
"""

import os

SPIN_COUNT = "GOMP_SPINCOUNT"
WAIT_POLICY = "OMP_WAIT_POLICY"
# Spins before a waiting thread sleeps (libgomp: ~100,000 a millisecond, so ~0.3 ms).
DEFAULT_SPIN_COUNT = 30_000


def spin_briefly() -> dict[str, str]:
    """Set the bounded spin for this process (unless the environment chose how to wait); returns the
    waiting knobs in effect, for children and for the benchmark's record."""
    if WAIT_POLICY not in os.environ:
        os.environ.setdefault(SPIN_COUNT, str(DEFAULT_SPIN_COUNT))
    return {key: os.environ[key] for key in (WAIT_POLICY, SPIN_COUNT) if key in os.environ}
