"""How llama.cpp's (and torch's) OpenMP threads wait at a barrier.

By default libgomp spins a while before it sleeps. When the cores are shared with other busy
processes (the API, Redis, other workers, a benchmark client), a spinning thread burns the time
slice its peer needs: on this 2-core machine, under load, greedy generation ran at 0.6-1.3 tokens/s
spinning and 12-16 tokens/s waiting passively, whichever thread called llama.cpp (README, "Where
llama.cpp runs"). Passive waiting costs little on dedicated cores; OMP_WAIT_POLICY=ACTIVE in the
environment keeps the spinning. libgomp reads the policy once, when it loads, so this must run before
anything imports llama_cpp (or torch).
"""

import os

WAIT_POLICY = "OMP_WAIT_POLICY"


def wait_passively() -> dict[str, str]:
    """Set the policy for this process (unless the environment chose one); returns it for children."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")
    return {WAIT_POLICY: os.environ[WAIT_POLICY]}
