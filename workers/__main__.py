"""Start a Celery worker for one device queue: `python -m workers --queue cpu`.

Each worker is named `<queue>-<pid>@<host>` (or `--name NAME@<host>`), so Flower and Celery's remote
control tell apart the workers of one queue, on one host or many. On a host running several model
workers, each uses its share of the cores (WORKERS_PER_HOST, or --threads): see runtimes/cpu_share.py.

The weights of every model on the queue are checked (SHA-256) before Celery starts, so a bad file
stops the worker here with a clear message instead of failing inside every pool process.
"""

import argparse
import logging
import os
import sys

from model_registry import get_registry, queues
from runtimes.cpu_share import threads_per_worker
from runtimes.model_files import ModelFileError, is_weights_file, verified_weights
from runtimes.openmp import spin_briefly
from settings import get_settings


def main() -> int | None:
    spin_briefly()  # before Celery's tasks import llama_cpp or torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--queue", required=True, help=f"device queue to serve (registry: {', '.join(queues())})"
    )
    parser.add_argument("--name", help="worker name before @host (default: <queue>-<pid>)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads of this worker (default: cores / WORKERS_PER_HOST)",
    )
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics here (0: off)")
    args = parser.parse_args()
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    specs = [spec for spec in get_registry().values() if spec.queue == args.queue]
    if not specs and args.queue != settings.training_queue:
        print(f"no model in the registry is served from queue {args.queue!r}", file=sys.stderr)
        return 2
    try:
        for spec in specs:
            if is_weights_file(spec):
                verified_weights(spec, settings.model_cache_dir)
    except ModelFileError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 3

    # A synthetic queue only sleeps between tokens, so threads serve many jobs. A queue whose models
    # batch several sequences (the llama.cpp or transformers engine) takes that many jobs at once on a
    # thread pool, and WORKER_WAITING_JOBS more, which wait in the engine for a fair share of its slots
    # (runtimes/fair_share.py): else a key holding every slot would keep another key's job in Redis,
    # out of the engine's sight. Each task thread hands its job to the engine and relays its tokens.
    # Otherwise one job at a time.
    synthetic = bool(specs) and all(spec.runtime == "synthetic" for spec in specs)
    slots = max((spec.max_sequences for spec in specs), default=1)
    if synthetic:
        pool, concurrency = "threads", settings.synthetic_concurrency
    elif slots > 1:
        pool, concurrency = "threads", slots + settings.worker_waiting_jobs
    else:
        pool, concurrency = "prefork", 1
    os.environ["WORKER_POOL"] = pool
    os.environ["WORKER_QUEUE"] = args.queue
    os.environ["WORKER_METRICS_PORT"] = str(args.metrics_port or settings.worker_metrics_port)
    if args.threads:
        os.environ["WORKER_THREADS"] = str(args.threads)
    get_settings.cache_clear()
    # torch and OpenMP size their thread pools from this when they load (in the pool process).
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_worker(get_settings())))
    name = args.name or f"{args.queue}-{os.getpid()}"
    # Celery's own command takes over this process (same PID, this environment): the worker package
    # never imports the Celery app above it (tasks/), whose tasks call down into this package.
    celery = [sys.executable, "-m", "celery", "--app", "tasks.app", "worker"]
    os.execv(
        sys.executable,
        [*celery, "--queues", args.queue, "--hostname", f"{name}@%h", "--loglevel", args.loglevel,
         "--concurrency", str(concurrency), "--pool", pool, "--events"],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
