"""Keeps the embedded stack's processes running: a child that exits (a crash, an OOM kill, a kill by
hand) is logged with the end of its log and started again after a backoff, 1 s doubling to 30 s,
back to 1 s once it has stayed up for a minute. Nothing else is stopped: the other services ride
out the gap (the API answers 503 meanwhile, streams end with an error event, the workers reconnect).
"""

import logging
import threading
import time
from dataclasses import dataclass

from embedded.processes import ManagedProcess

log = logging.getLogger(__name__)

CHECK_S = 0.5
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class Watch:
    backoff_s: float = FIRST_BACKOFF_S
    started_at: float = 0.0
    exited_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, processes: dict[str, ManagedProcess]) -> None:
        self._processes = processes  # the stack's own dict: services added later are watched too
        self._watches: dict[str, Watch] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> "Supervisor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def restarts(self, name: str) -> int:
        return self._watches[name].restarts if name in self._watches else 0

    def _run(self) -> None:
        while not self._stop.wait(CHECK_S):
            for name, process in list(self._processes.items()):
                self._check(name, process, time.monotonic())

    def _check(self, name: str, process: ManagedProcess, now: float) -> None:
        watch = self._watches.setdefault(name, Watch(started_at=now))
        if process.stopped:
            return
        if process.running:
            if now - watch.started_at > STABLE_AFTER_S:
                watch.backoff_s = FIRST_BACKOFF_S
            return
        if watch.exited_at is None:
            watch.exited_at = now
            code = process.process.returncode if process.process else None
            log.error(
                "%s exited (code %s); restarting in %.0fs. Last lines of its log:\n%s",
                name, code, watch.backoff_s, process.log_tail(),
            )  # fmt: skip
            return
        if now - watch.exited_at < watch.backoff_s or self._stop.is_set() or process.stopped:
            return
        try:
            process.restart()
        except OSError:
            log.exception("%s could not be restarted; trying again", name)
        watch.restarts += 1
        watch.started_at, watch.exited_at = now, None
        watch.backoff_s = min(watch.backoff_s * 2, MAX_BACKOFF_S)
