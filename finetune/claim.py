"""Hold a fine-tuning run's claim while it trains: renewed in a side thread, released at the end."""

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mongo.finetune_runs import claim_run, count_duplicate, release_claim, renew_claim

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def claimed(run_id: str, ttl_s: float) -> Iterator[bool]:
    """Yield True with the run claimed for this process (renewed every third of `ttl_s`), or False
    when it has ended or another worker holds it: this delivery is a duplicate and must not train."""
    worker = worker_id()
    if not claim_run(run_id, worker, ttl_s):
        log.warning(
            "fine-tuning run %s is done or held by another worker: duplicate delivery skipped", run_id
        )
        count_duplicate(run_id)
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                renew_claim(run_id, worker, ttl_s)
            except Exception:  # a blip of MongoDB: the next renewal may succeed before the lease lapses
                log.warning("could not renew the claim of run %s", run_id, exc_info=True)

    renewer = threading.Thread(target=renew, name=f"claim-{run_id}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        release_claim(run_id, worker)
