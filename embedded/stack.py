"""The whole system on one machine: what `make run` starts and what the tests start, in order."""

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from embedded import services
from embedded.processes import ManagedProcess, free_port
from embedded.supervisor import Supervisor
from settings import EMBEDDED_MONGO_SOCKET

log = logging.getLogger(__name__)


@dataclass
class StackConfig:
    data_dir: Path
    redis_port: int
    api_port: int
    flower_port: int | None = None
    mongo_uri: str | None = None  # an existing MongoDB; else the embedded FerretDB
    bin_dir: Path = services.FERRETDB_BIN_DIR
    api_host: str = "127.0.0.1"
    api_workers: int = 1  # API processes behind api_port
    queues: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    flower_basic_auth: str = ""  # `user:password`, given to Flower alone
    supervise: bool = True  # restart a child that exits (embedded/supervisor.py)
    # Redis's `requirepass`; `make run` keeps its own in the data directory.
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class EmbeddedStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, ManagedProcess] = {}
        self.log_dir = config.data_dir / "logs"
        self.worker_metrics_ports: dict[str, int] = {}
        self.supervisor = Supervisor(self.processes)

    @property
    def redis_url(self) -> str:
        return f"redis://:{quote(self.config.redis_password, safe='')}@127.0.0.1:{self.config.redis_port}/0"

    @property
    def mongo_socket(self) -> Path:
        """The embedded FerretDB's Unix socket, in an owner-only directory."""
        return self.config.data_dir / EMBEDDED_MONGO_SOCKET

    @property
    def mongo_uri(self) -> str:
        return self.config.mongo_uri or f"mongodb://{quote(str(self.mongo_socket), safe='')}/"

    @property
    def api_url(self) -> str:
        return f"http://{self.config.api_host}:{self.config.api_port}"

    @property
    def env(self) -> dict[str, str]:
        """What every Python service of the stack is configured with."""
        return {"REDIS_URL": self.redis_url, "MONGO_URI": self.mongo_uri, **self.config.extra_env}

    def start(self, flower: bool = True) -> "EmbeddedStack":
        try:
            self.start_datastores()
            for queue in self.config.queues:
                self.start_worker(queue)
            self._add(
                services.start_api(
                    self.config.api_port,
                    self.log_dir,
                    self.env,
                    self.config.api_host,
                    workers=self.config.api_workers,
                    metrics_dir=self.config.data_dir / "api-metrics",
                )
            )
            if flower and self.config.flower_port:
                flower_env = {**self.env, "FLOWER_BASIC_AUTH": self.config.flower_basic_auth}
                self._add(services.start_flower(self.config.flower_port, self.log_dir, flower_env))
            if self.config.supervise:
                self.supervisor.start()
        except BaseException:
            self.stop()
            raise
        return self

    def start_datastores(self) -> None:
        data = self.config.data_dir
        self._add(
            services.start_redis(
                self.config.redis_port, data / "redis", self.log_dir, self.config.redis_password
            )
        )
        if self.config.mongo_uri is None:
            self._add(
                services.start_ferretdb(
                    self.mongo_socket, data / "ferretdb", self.config.bin_dir, self.log_dir
                )
            )

    def start_worker(
        self, queue: str, name: str | None = None, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """The worker of a queue, or with `name` another one beside it (its metrics port under that name)."""
        port = self.worker_metrics_ports.setdefault(name or queue, free_port())
        return self._add(
            services.start_worker(
                queue, self.log_dir, {**self.env, **(env or {})}, self.redis_url, port, name=name
            )
        )

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop()

    def stop(self) -> None:
        """Stop in the reverse order of start: clients first, datastores last."""
        self.supervisor.stop()
        for name in reversed(list(self.processes)):
            self.stop_process(name)

    def _add(self, process: ManagedProcess) -> ManagedProcess:
        self.processes[process.name] = process
        return process

    def __enter__(self) -> "EmbeddedStack":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
