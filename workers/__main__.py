"""Start a Celery worker for one device queue: `python -m workers --queue cpu`.

The weights of every model on the queue are checked (SHA-256) before Celery starts, so a bad file
stops the worker here with a clear message instead of failing inside every pool process.
"""

import argparse
import logging
import os
import sys

from model_registry import get_registry, queues
from settings import get_settings
from workers.runtimes.model_files import ModelFileError, is_weights_file, verified_weights


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--queue", required=True, help=f"device queue to serve (registry: {', '.join(queues())})"
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

    # A model worker runs one generation at a time in a forked pool process (llama.cpp is ~2.5x slower
    # from a side thread); a synthetic queue only sleeps between tokens, so threads serve many jobs.
    synthetic = bool(specs) and all(spec.runtime == "synthetic" for spec in specs)
    pool, concurrency = ("threads", settings.synthetic_concurrency) if synthetic else ("prefork", 1)
    os.environ["WORKER_POOL"] = pool
    os.environ["WORKER_QUEUE"] = args.queue
    os.environ["WORKER_METRICS_PORT"] = str(args.metrics_port or settings.worker_metrics_port)
    get_settings.cache_clear()
    from tasks.app import app

    app.worker_main(
        ["worker", "--queues", args.queue, "--hostname", f"{args.queue}@%h", "--loglevel", args.loglevel,
         "--concurrency", str(concurrency), "--pool", pool, "--events"]
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
