"""The run command (`python -m embedded`, what `make run` starts) brings the whole system up,
serves the README's example, and Ctrl-C stops every process it started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from embedded.processes import free_port, port_open
from settings import PROJECT_ROOT
from tests.conftest import RACHEL
from tests.sse import post_stream


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


def test_run_command_serves_chat_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    command = [sys.executable, "-m", "embedded", "--data-dir", str(tmp_path), "--port", str(api_port),
               "--redis-port", str(free_port()), "--mongo-port", str(free_port()), "--flower-port", str(flower_port)]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key not in ("MONGO_URI", "ADMIN_API_KEY")}
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_health(url, process)
        deadline = time.monotonic() + 30  # Flower starts after the API, which already answers /health
        while not port_open(flower_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)

        with httpx.Client(base_url=url, timeout=60) as client:
            response, events = post_stream(client, "/Lumimaid_stream", {**RACHEL, "max_tokens": 8})
            admin_key = (tmp_path / "admin_api_key").read_text()
            databases = client.get("/mongo/db", headers={"X-API-Key": admin_key})
        flower = httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=10)

        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert response.status_code == 200 and events[-1].event == "done"
    assert databases.status_code == 200
    assert flower.status_code == 200
    for expected in ("redis-server", "ferretdb-launcher", "workers", "uvicorn", "flower"):
        assert expected in names
    assert exit_code == 0
    time.sleep(0.5)
    assert [
        child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ] == []
