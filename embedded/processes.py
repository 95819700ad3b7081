"""Child processes of the embedded stack: started in their own process group, logged to a file,
waited for until ready, and stopped with everything they spawned (a Celery pool, say)."""

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service did not start, or did not become ready in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


# sun_path is 108 bytes on Linux (104 on macOS), the terminating NUL included.
UNIX_SOCKET_PATH_MAX = 103


def socket_open(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(str(path)) == 0


class ManagedProcess:
    def __init__(
        self, name: str, command: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.process: subprocess.Popen | None = None
        self.stopped = False  # by stop(): not to be restarted

    def start(self) -> "ManagedProcess":
        self.stopped = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        log.info("started %s (pid %s), log: %s", self.name, self.process.pid, self.log_path)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def restart(self) -> "ManagedProcess":
        """Start again after an exit; what the old process left in its group (a Celery pool process
        whose parent was killed, say) is killed first, so it cannot hold a job or a port."""
        if self.process is not None:
            self._signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return self.start()

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise ServiceError(
                    f"{self.name} exited while starting; see {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if ready():
                    return
            except Exception:  # not ready yet, whatever the probe raised
                pass
            time.sleep(0.2)
        self.stop()  # not left behind: the caller never got hold of it
        raise ServiceError(f"{self.name} did not become {what} within {timeout_s:.0f}s; see {self.log_path}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the whole process group, then SIGKILL if it is still there after timeout_s."""
        self.stopped = True
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            self._signal_group(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs, killing it", self.name, timeout_s)
        self._signal_group(pgid, signal.SIGKILL)  # leave no child of the group behind
        self.process.wait()
        log.info("stopped %s", self.name)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
