"""Who killed the worker? After a worker dies, every job it ran comes back as a takeover, and one of
them may be the cause (poison input: a prompt or a token that crashes the engine, every time). So the
takeovers of a worker process go one at a time through a window: from its start until it has
streamed a token past its seam. Should the worker die during a job's window, that job made no
progress and was the only one in its window: a strike against it (jobs/transitions.py `take`);
jobs that ran beside it (past their own windows) are not blamed. New jobs do not wait for the
window, and no job waits for more than the windows of the takeovers ahead of it.

A crash that repeats where the job resumes (the same prompt, the same next token) is caught within
its first strikes; one that strikes elsewhere is bounded by the cap on takeovers of any cause.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_window = threading.Lock()


@contextmanager
def takeover_window() -> Iterator[Callable[[], None]]:
    """Wait for the window, then hold it; the callable it yields ends the window (the job's first
    token), and leaving the block ends it in any case."""
    _window.acquire()
    held = True

    def end_window() -> None:
        nonlocal held
        if held:
            held = False
            _window.release()

    try:
        yield end_window
    finally:
        end_window()
