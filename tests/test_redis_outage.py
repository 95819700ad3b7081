"""Redis going away, on the fault stack (tests/conftest.py): a worker outlives a Redis restart, and a
Redis that hangs (SIGSTOP: it accepts connections and answers nothing) gets new requests a quick
503 `redis_unavailable`, never a hang; once it is back, chats work again.

The module runs the queue's worker as the default configuration does (`make run`): several jobs at
once on a thread pool. When the connection drops with jobs running (their messages unacknowledged)
and a slot free (the worker waiting for more on the broker connection), Celery's teardown of the
connection used to make the worker exit (see tasks/broker_transport.py). A second
API process beside the stack's own has a requests-per-minute quota, so `/me` and every keyed
request touch Redis there (the quota's counters)."""

import json
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from tests.support.clients import ADMIN_KEY, RACHEL, keyed_client
from tests.support.extra_api import extra_api_client
from tests.support.faults import service, wait_through_faults, wait_worker_ready
from tests.support.sse import StreamEvent, iter_events

SHORT = {**RACHEL, "max_tokens": 4}
LONG = {**RACHEL, "input_data": "*I ask Rachel to tell me a very long story.*", "max_tokens": 120}
SLOTS = 4
RUNNING = 2  # jobs running when Redis dies, the other slots free
# A request that waits for Redis longer than this fails the test instead of hanging it.
CLIENT_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def api(fault_stack: EmbeddedStack) -> Iterator[httpx.Client]:
    with keyed_client(fault_stack.api_url, ADMIN_KEY) as client:
        client.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
        yield client


@pytest.fixture(scope="module", autouse=True)
def threads_worker(fault_stack: EmbeddedStack) -> Iterator[None]:
    """The queue's worker with several slots (a thread pool) for this module, then the fault
    stack's own (one slot, prefork) again."""
    slots = {"MODEL__LUMIMAID__MAX_SEQUENCES": str(SLOTS), "MODEL__LLAMA__MAX_SEQUENCES": str(SLOTS)}
    fault_stack.stop_process("worker-cpu")
    fault_stack.start_worker("cpu", env=slots)
    wait_worker_ready(fault_stack)
    yield
    fault_stack.stop_process("worker-cpu")
    fault_stack.start_worker("cpu")
    wait_worker_ready(fault_stack)


@pytest.fixture(scope="module")
def quota_api(fault_stack: EmbeddedStack) -> Iterator[httpx.Client]:
    """Another API process on the fault stack's Redis and MongoDB, counting each key's requests."""
    with extra_api_client(fault_stack, "api-quota", ADMIN_KEY, QUOTA_REQUESTS_PER_MINUTE="1000") as client:
        client.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
        yield client


@pytest.fixture
def stopped_redis(fault_stack: EmbeddedStack) -> Iterator[None]:
    wait_worker_ready(fault_stack)
    redis_server = service(fault_stack, "redis")
    redis_server.send_signal(signal.SIGSTOP)
    try:
        wait_through_faults(
            lambda: redis_server.status() == psutil.STATUS_STOPPED, timeout_s=60, what="Redis to be stopped"
        )
        yield
    finally:
        redis_server.send_signal(signal.SIGCONT)


def redis_unavailable(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.json()["error"]["code"] == "redis_unavailable"
        and int(response.headers["Retry-After"]) >= 1
    )


def chat_done(client: httpx.Client) -> bool:
    response = client.post("/Lumimaid_stream", json=SHORT)
    return response.status_code == 200 and "event: done" in response.text


def test_requests_answer_503_while_redis_is_stopped_and_work_once_it_resumes(
    api: httpx.Client, quota_api: httpx.Client, fault_stack: EmbeddedStack, stopped_redis: None
) -> None:
    me = quota_api.get("/me")
    keyed_chat = quota_api.post("/Lumimaid_stream", json=SHORT)
    chat = api.post("/Lumimaid_stream", json=SHORT)
    service(fault_stack, "redis").send_signal(signal.SIGCONT)

    assert redis_unavailable(me), me.text
    assert redis_unavailable(keyed_chat), keyed_chat.text
    assert redis_unavailable(chat), chat.text
    assert wait_through_faults(
        lambda: quota_api.get("/me").status_code == 200, timeout_s=120, what="/me to answer again"
    )
    assert wait_through_faults(lambda: chat_done(api), timeout_s=300, what="a chat to be answered again")
    assert wait_through_faults(
        lambda: chat_done(quota_api), timeout_s=300, what="a chat on the quota API to be answered again"
    )


def test_the_worker_outlives_a_redis_restart_with_jobs_running(
    api: httpx.Client, fault_stack: EmbeddedStack
) -> None:
    worker = service(fault_stack, "worker-cpu")
    restarts = fault_stack.supervisor.restarts("worker-cpu")
    redis_server = service(fault_stack, "redis")
    streaming = []

    def stream() -> list[StreamEvent]:
        events = []
        with connect_sse(api, "POST", "/Lumimaid_stream", json=LONG) as source:
            for sse in iter_events(source):
                events.append(StreamEvent(sse.id, sse.event, json.loads(sse.data)))
                if len(events) == 2:
                    streaming.append(True)
        return events

    with ThreadPoolExecutor(RUNNING) as pool:
        streams = [pool.submit(stream) for _ in range(RUNNING)]
        wait_through_faults(
            lambda: len(streaming) == RUNNING, timeout_s=300, what="every stream to be generating"
        )
        redis_server.send_signal(signal.SIGKILL)
        finals = [future.result()[-1] for future in streams]
    wait_through_faults(
        lambda: service(fault_stack, "redis").pid != redis_server.pid,
        timeout_s=60,
        what="Redis to be restarted",
    )
    chat = wait_through_faults(
        lambda: chat_done(api), timeout_s=300, what="a chat to be answered after the restart"
    )

    assert [(final.event, final.data["code"]) for final in finals] == [
        ("error", "redis_unavailable")
    ] * RUNNING
    assert chat
    # The same worker process reconnected: it was neither restarted nor replaced.
    assert service(fault_stack, "worker-cpu").pid == worker.pid
    assert fault_stack.supervisor.restarts("worker-cpu") == restarts
