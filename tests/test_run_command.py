"""The run command (`python -m embedded`, what `make run` starts) brings the whole system up,
serves the README's example, and Ctrl-C stops every process it started."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from embedded.processes import free_port
from settings import PROJECT_ROOT
from tests.conftest import RACHEL
from tests.sse import post_stream

FLOWER_TABLES = {
    "workers": {"json": 1},
    "tasks/datatable": {"draw": 1, "start": 0, "length": 100, "search[value]": "", "order[0][column]": 0,
                        "order[0][dir]": "desc", "columns[0][data]": "name"},
}  # fmt: skip


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run command exited while starting"
        try:
            body = httpx.get(f"{url}/health", timeout=2).json()
            if body["status"] == "ok":
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError("the system did not come up")


def flower_view(
    flower_url: str,
    page: str,
    ready: Callable[[list[dict]], bool],
    auth: tuple[str, str],
    timeout_s: float = 30,
) -> list[dict]:
    """A table of Flower's (tasks or workers) once `ready` says it is complete: Flower starts after
    the API and learns both from the workers' events, so it lags a moment behind."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rows = httpx.get(
                f"{flower_url}/{page}", params=FLOWER_TABLES[page], auth=auth, timeout=10
            ).json()["data"]
        except httpx.ConnectError:
            rows = []
        if ready(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_run_command_serves_chat_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    command = [sys.executable, "-m", "embedded", "--data-dir", str(tmp_path), "--port", str(api_port),
               "--redis-port", str(free_port()), "--mongo-port", str(free_port()), "--flower-port", str(flower_port)]  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MONGO_URI", "ADMIN_API_KEY", "FLOWER_BASIC_AUTH")
    }
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_health(url, process)
        flower_url = f"http://127.0.0.1:{flower_port}"
        user, password = (tmp_path / "flower_basic_auth").read_text().split(":", 1)
        auth = (user, password)
        # Flower has seen both workers: the chat one and the training one.
        workers = flower_view(flower_url, "workers", lambda rows: len(rows) >= 2, auth)
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)

        with httpx.Client(base_url=url, timeout=60) as client:
            response, events = post_stream(client, "/Lumimaid_stream", {**RACHEL, "max_tokens": 8})
            admin_key = (tmp_path / "admin_api_key").read_text()
            databases = client.get("/mongo/db", headers={"X-API-Key": admin_key})
        flower = httpx.get(f"{flower_url}/", auth=auth, timeout=10)
        stranger = httpx.get(f"{flower_url}/tasks", timeout=10)
        tasks = flower_view(
            flower_url, "tasks/datatable", lambda rows: bool(rows) and all(r["name"] for r in rows), auth
        )
        broker = httpx.get(f"{flower_url}/broker", auth=auth, timeout=10).text

        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert response.status_code == 200 and events[-1].event == "done"
    assert databases.status_code == 200
    assert flower.status_code == 200
    assert stranger.status_code == 401  # Flower is behind basic auth
    assert [task["name"] for task in tasks] == ["chat.generate"]
    assert sorted(worker["hostname"].split("@")[0] for worker in workers) == ["cpu", "train"]
    assert "<td>cpu</td>" in broker  # the device queue
    for expected in ("redis-server", "ferretdb-launcher", "workers", "uvicorn", "flower"):
        assert expected in names
    assert exit_code == 0
    time.sleep(0.5)
    assert [
        child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ] == []
