"""How llama.cpp's (and torch's) OpenMP threads wait at a barrier: spin briefly, then sleep.

llama.cpp's CPU threads meet at a barrier after every operation of the graph, hundreds of times a
token. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs a futex wake per barrier; spinning without
end (ACTIVE alone) burns the cores an idle worker shares with the API, Redis and other workers.
libgomp's default, a ~3 ms spin (GOMP_SPINCOUNT 300,000), is what llama-server runs with, but in our
worker it does not apply: the engine decodes on its own thread, not the process's first one, and
libgomp then counts more threads than cores and cuts every spin to 100 iterations ("throttled"),
which waits as PASSIVE does (measured here: llama_decode of one token 14 ms from the main thread,
32 ms from another thread). With OMP_WAIT_POLICY=ACTIVE the throttled spin is 1,000 iterations
(~10 us) instead, enough for a barrier whose peer is running, and GOMP_SPINCOUNT bounds the
unthrottled spin (~0.3 ms), so no thread spins on once a worker is idle. The engine alone went from
31 to 53 tokens/s for one sequence (README, "Where llama.cpp runs"). An OMP_WAIT_POLICY or
GOMP_SPINCOUNT in the environment wins: neither is then set here.

libgomp reads these once, when it loads, so this must run before anything imports llama_cpp (or torch).
"""

import os

WAIT_POLICY = "OMP_WAIT_POLICY"
SPIN_COUNT = "GOMP_SPINCOUNT"
# Spins before a waiting thread sleeps when not throttled (libgomp: ~100,000 a millisecond).
DEFAULT_SPIN_COUNT = 30_000


def spin_briefly() -> dict[str, str]:
    """Set the waiting for this process (unless the environment chose it); returns the waiting
    knobs in effect, for children and for the benchmark's record."""
    if WAIT_POLICY not in os.environ and SPIN_COUNT not in os.environ:
        os.environ[WAIT_POLICY] = "ACTIVE"
        os.environ[SPIN_COUNT] = str(DEFAULT_SPIN_COUNT)
    return {key: os.environ[key] for key in (WAIT_POLICY, SPIN_COUNT) if key in os.environ}
