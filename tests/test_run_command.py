"""The run command (`python -m embedded`, what `make run` starts) brings the whole system up, here
with two API processes behind its one port (API_WORKERS), serves the README's example, and Ctrl-C
stops every process it started, ending the streams still open with a terminal event."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from httpx_sse import connect_sse

from embedded.processes import free_port
from settings import PROJECT_ROOT
from tests.support.clients import RACHEL
from tests.support.metrics import samples
from tests.support.sse import StreamEvent, iter_events, post_stream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack  # starts its own whole system

FLOWER_TABLES = {
    "workers": {"json": 1},
    "tasks/datatable": {"draw": 1, "start": 0, "length": 100, "search[value]": "", "order[0][column]": 0,
                        "order[0][dir]": "desc", "columns[0][data]": "name"},
}  # fmt: skip


def health(url: str, process: subprocess.Popen) -> dict:
    assert process.poll() is None, "the run command exited while starting"
    try:
        return httpx.get(f"{url}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"status": f"not answering: {exc!r}"}


def wait_for_health(url: str, process: subprocess.Popen) -> dict:
    return wait_until(
        lambda: health(url, process),
        lambda body: body["status"] == "ok",
        what="the system to come up",
        timeout_s=240,
        every_s=0.5,
    )


def flower_rows(flower_url: str, page: str, auth: tuple[str, str]) -> list[dict]:
    try:
        return httpx.get(f"{flower_url}/{page}", params=FLOWER_TABLES[page], auth=auth, timeout=10).json()[
            "data"
        ]
    except httpx.ConnectError:
        return []


def flower_view(
    flower_url: str, page: str, ready: Callable[[list[dict]], bool], auth: tuple[str, str]
) -> list[dict]:
    """A table of Flower's (tasks or workers) once `ready` says it is complete: Flower starts after
    the API and learns both from the workers' events, so it lags a moment behind."""
    return wait_until(
        lambda: flower_rows(flower_url, page, auth), ready, what=f"Flower's {page}", every_s=0.5
    )


def several_started_on_one_worker(rows: list[dict]) -> bool:
    started = Counter(row["worker"] for row in rows if row["state"] == "STARTED")
    return max(started.values(), default=0) >= 2


def api_processes(url: str, admin_key: str) -> set[int]:
    """The API processes whose figures /metrics gives (each counts the job events it received)."""
    try:
        found = samples(httpx.get(f"{url}/metrics", headers={"X-API-Key": admin_key}, timeout=10).text)
    except httpx.HTTPError:
        return set()
    return {
        int(dict(labels)["pid"]) for name, labels in found if name == "chatbot_relay_messages_received_total"
    }


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_running(processes: list[psutil.Process]) -> list[int]:
    return [process.pid for process in processes if alive(process)]


def stream_to_the_end(url: str, admin_key: str, generating: threading.Semaphore) -> list[StreamEvent]:
    """A long chat's events, to the end of its stream; `generating` is released at its first token."""
    body = {**RACHEL, "input_data": "*I ask Rachel to tell me a very long story.*", "max_tokens": 1000}
    events = []
    headers = {"Authorization": f"Bearer {admin_key}"}
    with (
        httpx.Client(base_url=url, timeout=60, headers=headers) as client,
        connect_sse(client, "POST", "/Lumimaid_stream", json=body) as source,
    ):
        for sse in iter_events(source):
            events.append(StreamEvent(sse.id, sse.event, json.loads(sse.data)))
            if len(events) == 1:
                generating.release()
    return events


def test_run_command_serves_chat_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    api_port, flower_port, redis_port = free_port(), free_port(), free_port()
    command = [sys.executable, "-m", "embedded", "--data-dir", str(tmp_path), "--port", str(api_port),
               "--redis-port", str(redis_port), "--flower-port", str(flower_port)]  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MONGO_URI", "ADMIN_API_KEY", "FLOWER_BASIC_AUTH")
    } | {"API_WORKERS": "2"}
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
        admin_key = (tmp_path / "admin_api_key").read_text()
        redis_password = (tmp_path / "redis_password").read_text()
        with pytest.raises(redis.AuthenticationError), redis.Redis(port=redis_port) as stranger_redis:
            stranger_redis.ping()
        api_pids = wait_until(
            lambda: api_processes(url, admin_key), lambda pids: len(pids) == 2, what="both API processes"
        )
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)

        with httpx.Client(base_url=url, timeout=60) as client:
            refused = client.post("/Lumimaid_stream", json={**RACHEL, "max_tokens": 8})
            client.headers["Authorization"] = f"Bearer {admin_key}"
            response, events = post_stream(client, "/Lumimaid_stream", {**RACHEL, "max_tokens": 8})
            with ThreadPoolExecutor(3) as pool:  # three chats at once: the worker's engine batches them
                chats = [
                    pool.submit(post_stream, client, "/Lumimaid_stream", {**RACHEL, "max_tokens": 200})
                    for _ in range(3)
                ]
                at_once = flower_view(flower_url, "tasks/datatable", several_started_on_one_worker, auth)
                for chat in chats:
                    chat.result()
            databases = client.get("/mongo/db", headers={"X-API-Key": admin_key})
        flower = httpx.get(f"{flower_url}/", auth=auth, timeout=10)
        stranger = httpx.get(f"{flower_url}/tasks", timeout=10)
        tasks = flower_view(
            flower_url, "tasks/datatable", lambda rows: bool(rows) and all(r["name"] for r in rows), auth
        )
        broker = httpx.get(f"{flower_url}/broker", auth=auth, timeout=10).text

        generating = threading.Semaphore(0)
        with ThreadPoolExecutor(2) as pool:  # two streams open at Ctrl-C
            open_streams = [pool.submit(stream_to_the_end, url, admin_key, generating) for _ in range(2)]
            assert all(generating.acquire(timeout=240) for _ in open_streams)
            process.send_signal(signal.SIGINT)
            output = process.communicate(timeout=60)[0].decode(errors="replace")
            exit_code = process.returncode
            cut_short = [stream.result() for stream in open_streams]
    finally:
        if process.poll() is None:  # the test failed before Ctrl-C: stop what the command started too
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()

    assert refused.status_code == 401  # no key
    assert response.status_code == 200 and events[-1].event == "done"
    assert admin_key in output  # printed for the operator, with where it is kept
    # Redis asks for the password kept in the data directory (owner-only, like the admin key), which
    # is on no command line; FerretDB's socket directory is owner-only.
    assert stat.S_IMODE((tmp_path / "redis_password").stat().st_mode) == 0o600
    assert redis_password not in names
    assert stat.S_IMODE((tmp_path / "sockets").stat().st_mode) == 0o700
    assert api_pids <= {child.pid for child in children}  # /metrics speaks for both API processes
    assert databases.status_code == 200
    assert flower.status_code == 200
    assert stranger.status_code == 401  # Flower is behind basic auth
    assert {task["name"] for task in tasks} == {"chat.generate"}
    assert several_started_on_one_worker(at_once)  # Flower shows one worker running several chats
    # Workers are named <queue>-<pid>@host.
    assert sorted(worker["hostname"].split("@")[0].rsplit("-", 1)[0] for worker in workers) == [
        "cpu",
        "train",
    ]
    assert "<td>cpu</td>" in broker  # the device queue
    # A worker is started as "python -m workers --queue cpu ...", which hands the process to Celery's own
    # command ("python -m celery --app tasks.app worker --queues cpu ..."), or Celery's own title for it
    # when setproctitle is installed ("[celeryd: cpu@host:MainProcess] ... (--queues cpu ...)").
    for expected in (
        "redis-server",
        "ferretdb-launcher",
        "--queues cpu",
        "--queues train",
        "uvicorn",
        "flower",
    ):
        assert expected in names
    assert exit_code == 0
    for events in cut_short:  # each open stream ended with a terminal event, ids in order
        assert [event.event for event in events[:-1]] == ["token"] * (len(events) - 1)
        assert (events[-1].event, events[-1].data.get("code")) == ("error", "shutting_down")
        assert [int(event.id) for event in events] == list(range(len(events)))
    assert wait_until(lambda: still_running(children), lambda pids: pids == [], what="no child left") == []
