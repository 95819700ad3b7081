"""Tells the API which queues have a live worker with its models loaded.

Each worker process scores itself in a Redis sorted set per queue with the current time; the API
counts members younger than the TTL. Cheaper and more exact than a Celery broadcast ping, which a
busy worker cannot answer quickly.
"""

import logging
import os
import socket
import threading
import time

import redis

from jobs.keys import workers_key

log = logging.getLogger(__name__)


def process_member() -> str:
    """This process in its queue's heartbeat set; a job's `started` event names it, so the API can
    tell when the process running the job is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    def __init__(self, client: redis.Redis, queue: str, interval_s: float, ttl_s: float) -> None:
        self._client = client
        self._key = workers_key(queue)
        self._member = process_member()
        self._interval_s = interval_s
        self._ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self._client.zrem(self._key, self._member)
        except redis.RedisError:
            log.warning("could not remove %s from %s", self._member, self._key)

    def _beat(self) -> None:
        now = time.time()
        pipe = self._client.pipeline()
        pipe.zadd(self._key, {self._member: now})
        pipe.zremrangebyscore(self._key, "-inf", now - self._ttl_s)
        pipe.execute()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
