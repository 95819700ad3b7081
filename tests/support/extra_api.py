"""A second API process beside the session's: the same Redis, MongoDB and workers, other settings (a
queue limit, small quotas, an allowlist), or the same ones for the tests of two API processes at once."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psutil

from embedded.processes import free_port
from embedded.services import start_api
from embedded.stack import EmbeddedStack
from tests.support.clients import keyed_client
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class ExtraApi:
    url: str
    pid: int


@contextmanager
def extra_api(stack: EmbeddedStack, name: str, **env: str) -> Iterator[ExtraApi]:
    """The API on a free port with the stack's environment and `env` over it, answering /health
    before the block runs; stopped after it, its process gone. Its log is `name`.log beside the
    stack's, so `name` is one of its own."""
    port = free_port()
    process = start_api(port, stack.log_dir, {**stack.env, **env}, name=name)
    pid = process.pid
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/health", timeout=10).status_code,
            lambda status: status == 200,
            what=f"{name} to answer /health",
            ignoring=(httpx.HTTPError,),
        )
        yield ExtraApi(url, pid)
    finally:
        process.stop()
    assert not psutil.pid_exists(pid), f"{name} (pid {pid}) is still there after its stop"


@contextmanager
def extra_api_client(stack: EmbeddedStack, name: str, key: str, **env: str) -> Iterator[httpx.Client]:
    """A client of `extra_api(stack, name, **env)` calling with `key`."""
    with extra_api(stack, name, **env) as extra, keyed_client(extra.url, key) as client:
        yield client
