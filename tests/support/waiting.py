"""Waiting for a condition the way the house rules ask: poll with a deadline generous enough for a loaded
2-core machine, and when it passes, fail with the last value seen (never a bare "timed out")."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for a busy CI machine; a condition that holds returns as soon as it is seen.
DEFAULT_TIMEOUT_S = 300


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    what: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """The first value of `probe()` that `done` accepts; an AssertionError naming `what` and the last
    value when none did within `timeout_s`. A probe raising one of `ignoring` (a service on its way
    back up refusing connections) counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except ignoring as error:
            value = error
        else:
            if done(value):
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g}s for {what}; last seen: {value!r}")
        time.sleep(every_s)
