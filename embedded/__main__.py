"""`python -m embedded`: run the whole system on this machine until Ctrl-C.

Redis, FerretDB (unless MONGO_URI names a MongoDB), one worker per device queue of the model
registry, the API (API_WORKERS processes behind one port) and Flower. A service that exits is
restarted with a backoff (embedded/supervisor.py).
Ctrl-C (or SIGTERM) stops all of them, leaving no process behind.
"""

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from accounts.keys import new_key
from embedded import services
from embedded.processes import ServiceError
from embedded.stack import EmbeddedStack, StackConfig
from model_registry import queues
from settings import PROJECT_ROOT, get_settings

log = logging.getLogger("embedded")

FLOWER_USER = "admin"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data")
    parser.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    parser.add_argument(
        "--api-workers",
        type=int,
        default=int(os.environ.get("API_WORKERS", "1")),
        help="API processes behind the one port (each relays only its own streams' events)",
    )
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("EMBEDDED_REDIS_PORT", "6379")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    parser.add_argument("--prepare", action="store_true", help="build the FerretDB launcher and exit")
    return parser.parse_args()


def kept_secret(data_dir: Path, variable: str, file_name: str, generated: str) -> str:
    """The environment's `variable` if set, else `generated` on first run, kept (owner-only) in
    the data directory for the next runs."""
    if os.environ.get(variable):
        return os.environ[variable]
    secret_file = data_dir / file_name
    if not secret_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(generated)
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def admin_key(data_dir: Path) -> str:
    """The first admin's key (user `admin`), made on first run like any other key."""
    return kept_secret(data_dir, "ADMIN_API_KEY", "admin_api_key", new_key())


def flower_basic_auth(data_dir: Path) -> str:
    """`user:password` for Flower, whose pages show every job's arguments."""
    generated = f"{FLOWER_USER}:{secrets.token_urlsafe(18)}"
    return kept_secret(data_dir, "FLOWER_BASIC_AUTH", "flower_basic_auth", generated)


def redis_password(data_dir: Path) -> str:
    """Redis's `requirepass`: every process of the stack gets it in its REDIS_URL."""
    return kept_secret(data_dir, "EMBEDDED_REDIS_PASSWORD", "redis_password", secrets.token_urlsafe(24))


def prepare() -> int:
    """What the first start would otherwise do slowly: build the FerretDB launcher."""
    if os.environ.get("MONGO_URI"):
        return 0
    try:
        services.ferretdb_binary(services.FERRETDB_BIN_DIR)
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args()
    if args.prepare:
        return prepare()
    key = admin_key(args.data_dir)
    config = StackConfig(
        data_dir=args.data_dir,
        redis_port=args.redis_port,
        redis_password=redis_password(args.data_dir),
        api_port=args.port,
        api_host=args.host,
        api_workers=args.api_workers,
        flower_port=args.flower_port,
        mongo_uri=os.environ.get("MONGO_URI"),
        queues=[*queues(), get_settings().training_queue],
        extra_env={"ADMIN_API_KEY": key},
        flower_basic_auth=flower_basic_auth(args.data_dir),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = EmbeddedStack(config)
    try:
        stack.start()
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    log.info("API:    %s  (docs: %s/docs), %d process(es)", stack.api_url, stack.api_url, args.api_workers)
    log.info(
        "Flower: http://127.0.0.1:%s (user and password: FLOWER_BASIC_AUTH, else %s)",
        args.flower_port,
        args.data_dir / "flower_basic_auth",
    )
    log.info(
        "Metrics: %s/metrics; workers: %s",
        stack.api_url,
        ", ".join(
            f"{queue} http://127.0.0.1:{port}/metrics" for queue, port in stack.worker_metrics_ports.items()
        ),
    )
    log.info(
        "Admin API key: %s (user `admin`; kept in %s, or ADMIN_API_KEY). Send it as "
        "Authorization: Bearer <key>; make users and keys with `chatbot users` and `chatbot keys`.",
        key,
        "the environment" if os.environ.get("ADMIN_API_KEY") else args.data_dir / "admin_api_key",
    )
    log.info(
        "Redis on 127.0.0.1:%s asks for the password in %s; FerretDB listens on the Unix socket %s only",
        args.redis_port,
        "the environment (EMBEDDED_REDIS_PASSWORD)"
        if os.environ.get("EMBEDDED_REDIS_PASSWORD")
        else args.data_dir / "redis_password",
        stack.mongo_socket if config.mongo_uri is None else "(none: MONGO_URI is used instead)",
    )
    log.info("Logs in %s. A service that exits is restarted. Ctrl-C stops everything.", stack.log_dir)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("stopping")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
