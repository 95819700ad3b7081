"""The service as a stranger probes it: oversized bodies, spoofed addresses, overflowing page
numbers, names that climb out of their folder, pathological cards, bursts of chats. Every probe is
refused with a 4xx before any work is done, and nothing is stored."""

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import psutil
import pytest
import redis
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from jobs.keys import admission_key
from model_registry import get_registry
from tests.support.clients import RACHEL
from tests.support.extra_api import extra_api_client
from tests.support.jobs import wait_until_ended
from tests.support.load import worker_full
from tests.support.sse import post_stream
from tests.support.waiting import wait_until

MIB = 1024 * 1024
DEFAULT_BODY_LIMIT = MIB


@pytest.fixture(scope="module")
def allowlisted_api(stack: EmbeddedStack, api_key: str) -> Iterator[httpx.Client]:
    """Only 10.0.0.0/8 may call it; this machine (127.0.0.1) is not trusted as a proxy."""
    with extra_api_client(stack, "api-allowlist", api_key, IP_ALLOWLIST="10.0.0.0/8") as client:
        yield client


@pytest.fixture(scope="module")
def behind_a_proxy_api(stack: EmbeddedStack, api_key: str) -> Iterator[httpx.Client]:
    """The same allowlist, behind a proxy on 127.0.0.1 whose X-Forwarded-For is believed."""
    with extra_api_client(
        stack, "api-proxy", api_key, IP_ALLOWLIST="10.0.0.0/8", FORWARDED_ALLOW_IPS="127.0.0.1"
    ) as client:
        yield client


@pytest.fixture(scope="module")
def depth_4_api(stack: EmbeddedStack, api_key: str) -> Iterator[httpx.Client]:
    """Four waiting chats per queue; patient with a worker slowed by a loaded machine."""
    with extra_api_client(
        stack, "api-depth-4", api_key, QUEUE_MAX_DEPTH="4", STREAM_SILENCE_TIMEOUT_S="120"
    ) as client:
        yield client


def api_rss(stack: EmbeddedStack) -> int:
    return psutil.Process(stack.processes["api"].process.pid).memory_info().rss


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked): the server learns its size only by reading it."""
    block = b"x" * size
    for _ in range(total // size):
        yield block


def test_a_2_mib_body_is_refused_with_413_naming_the_limit(api: httpx.Client, db) -> None:
    name = f"Huge {uuid.uuid4().hex}"
    body = {**RACHEL, "character_name": name, "context": "x" * (2 * MIB)}

    response = api.post("/Lumimaid_stream", json=body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert str(DEFAULT_BODY_LIMIT) in response.json()["error"]["message"]
    assert db.characters.count_documents({"name": name}) == 0


def worker_errors(stack: EmbeddedStack) -> float:
    """Jobs the cpu worker ended in an error, from its own metrics."""
    text = httpx.get(f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("chatbot_worker_jobs_total{") and 'outcome="error"' in line
    )


@pytest.mark.parametrize("model", ["lumimaid", "llama"])
def test_a_prompt_too_long_for_the_model_is_400_before_the_worker_sees_it(
    api: httpx.Client, stack, broker: redis.Redis, model: str
) -> None:
    errors_before = worker_errors(stack)
    queue = get_registry()[model].queue
    admitted_before = broker.zcard(admission_key(queue))
    body = {"model": model, "messages": [{"role": "user", "content": "word " * 190_000}], "max_tokens": 1}

    response = api.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "prompt_too_long"
    assert "X-Job-Id" not in response.headers  # never enqueued
    assert worker_errors(stack) == errors_before
    assert broker.zcard(admission_key(queue)) == admitted_before  # its queue place given back


def test_a_character_too_long_for_the_context_window_is_400_and_stores_nothing(api: httpx.Client, db) -> None:
    name = f"Verbose {uuid.uuid4().hex}"
    card = {"name": name, "description": "She talks. " * 2_000, "first_mes": "Hello."}
    character = api.post("/characters", json=card).json()

    response = api.post("/Lumimaid_stream", json={"input_data": "Hi", "character_id": character["id"]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "prompt_too_long"
    assert db.conversations.count_documents({"character_name": name}) == 0


def test_a_body_without_length_is_cut_off_at_the_limit_and_not_held(api: httpx.Client, stack) -> None:
    api.get("/health")  # the API has served requests: what it loads on the way is loaded
    before = api_rss(stack)

    try:
        response = api.post(
            "/v1/chat/completions",
            content=chunks(64 * MIB),
            headers={"Content-Type": "application/json"},
        )
        status = response.status_code
    except httpx.TransportError:  # the server may close the connection while the client still sends
        status = None
    grown = api_rss(stack) - before

    assert status in (413, None)
    assert grown < 4 * DEFAULT_BODY_LIMIT, f"the API grew by {grown} bytes reading a 64 MiB body"
    assert api.get("/health").status_code == 200


def test_spoofed_forwarded_headers_do_not_pass_the_allowlist(allowlisted_api: httpx.Client) -> None:
    spoofed = {"X-Forwarded-For": "10.1.2.3", "Forwarded": "for=10.1.2.3"}

    refused = [allowlisted_api.get(path, headers=spoofed) for path in ("/characters", "/metrics", "/docs")]
    health = allowlisted_api.get("/health", headers=spoofed)

    assert [response.status_code for response in refused] == [403, 403, 403]
    assert "127.0.0.1 is not allowed" in refused[0].json()["error"]["message"]
    assert health.status_code == 200


def test_a_configured_proxy_is_believed(behind_a_proxy_api: httpx.Client) -> None:
    allowed = behind_a_proxy_api.get("/characters", headers={"X-Forwarded-For": "10.1.2.3"})
    outsider = behind_a_proxy_api.get("/characters", headers={"X-Forwarded-For": "203.0.113.9"})

    assert allowed.status_code == 200
    assert outsider.status_code == 403


def test_cors_allows_no_other_origin_by_default(api: httpx.Client) -> None:
    preflight = api.options(
        "/characters",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("path", ["/characters", "/conversations"])
def test_a_page_number_past_the_bound_is_422(api: httpx.Client, path: str) -> None:
    response = api.get(path, params={"page": 9223372036854775807})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == ["page"]


@pytest.mark.parametrize("name", ["%2E%2E", "%2E", "a%5Cb", "a%01b"])
def test_dataset_names_that_are_not_one_folder_are_422(api: httpx.Client, admin_headers, name: str) -> None:
    response = api.post(
        f"/datasets/{name}", content=b'{"instruction": "a", "output": "b"}\n', headers=admin_headers
    )

    listed = api.get("/datasets", headers=admin_headers).json()["datasets"]

    assert response.status_code == 422
    assert not [dataset for dataset in listed if not dataset["name"].strip(".")]


@pytest.mark.parametrize("field", ["name", "dataset"])
def test_fine_tune_names_that_climb_out_are_422(api: httpx.Client, admin_headers, db, field: str) -> None:
    runs_before = db.finetune_runs.count_documents({})
    body = {"dataset": "ko_sample", "name": "ok", field: ".."}

    response = api.post("/finetune", json=body, headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [field]
    assert db.finetune_runs.count_documents({}) == runs_before


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def created_card(name: str, extensions: dict) -> dict:
    return {"name": name, "description": "A test.", "first_mes": "Hi.", "extensions": extensions}


def test_a_deeply_nested_card_is_refused_on_create_and_update(api: httpx.Client, db) -> None:
    name = f"Deep {uuid.uuid4().hex}"
    stored = api.post("/characters", json=created_card(name, {})).json()
    deep = created_card(name, nested(600))

    created = api.post("/characters", json={**deep, "name": f"{name} 2"})
    updated = api.put(f"/characters/{stored['id']}", json=deep)

    assert created.status_code == 422 and created.json()["error"]["code"] == "card_too_deep"
    assert updated.status_code == 422 and updated.json()["error"]["code"] == "card_too_deep"
    assert db.characters.count_documents({"name": f"{name} 2"}) == 0
    assert api.get(f"/characters/{stored['id']}").json()["extensions"] == {}


def test_a_stranger_sending_a_big_broken_card_gets_401_before_the_card_is_read(
    stack: EmbeddedStack, api: httpx.Client
) -> None:
    stored = api.post("/characters", json=created_card(f"Deep {uuid.uuid4().hex}", {})).json()
    broken = b'{"name": "x", "description": "' + b"x" * (MIB + MIB // 2)  # never closed
    deep = json.dumps(created_card(f"Deep {uuid.uuid4().hex}", nested(600))).encode()
    json_type = {"Content-Type": "application/json"}

    with httpx.Client(base_url=stack.api_url, timeout=60, headers=json_type) as stranger:
        answers = [
            stranger.post("/characters", content=broken),
            stranger.post("/characters", content=deep),
            stranger.post("/characters", content=broken, headers={"Authorization": "Bearer not-a-key"}),
            stranger.put(f"/characters/{stored['id']}", content=broken),
        ]
    own_broken = api.post("/characters", content=broken, headers=json_type)

    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(401, "unauthorized")] * 4
    assert (own_broken.status_code, own_broken.json()["error"]["code"]) == (422, "invalid_card")


def test_a_huge_card_is_refused_on_create_and_update(api: httpx.Client, db) -> None:
    name = f"Huge card {uuid.uuid4().hex}"
    stored = api.post("/characters", json=created_card(name, {})).json()
    huge = created_card(name, {"blob": "x" * (3 * MIB)})

    created = api.post("/characters", json={**huge, "name": f"{name} 2"})
    updated = api.put(f"/characters/{stored['id']}", json=huge)

    assert created.status_code == 413
    assert updated.status_code == 413
    assert db.characters.count_documents({"name": f"{name} 2"}) == 0
    assert api.get(f"/characters/{stored['id']}").json()["extensions"] == {}


def test_a_burst_of_chats_admits_at_most_the_queue_depth_and_leaks_no_slot(
    depth_4_api: httpx.Client, broker: redis.Redis
) -> None:
    api = depth_4_api
    # Every slot of the model busy with this key's chats: its burst on that model waits, queued.
    with worker_full(api), ExitStack() as open_streams:

        def chat(_: int) -> httpx.Response:
            request = api.build_request("POST", "/Lumimaid_stream", json={**RACHEL, "max_tokens": 2})
            response = api.send(request, stream=True)
            open_streams.callback(response.close)
            return response

        with ThreadPoolExecutor(max_workers=30) as pool:
            statuses = [response.status_code for response in pool.map(chat, range(30))]
        admitted = broker.zcard(admission_key("cpu"))

        assert statuses.count(200) <= 4
        assert statuses.count(200) + statuses.count(429) == 30
        assert admitted == statuses.count(200)
    # Every client has gone: the waiting jobs are cancelled and give their places back.
    wait_until(
        lambda: broker.zcard(admission_key("cpu")), lambda held: held == 0, what="every slot to be released"
    )
    with connect_sse(api, "POST", "/Llama_stream", json={"input_data": "Hi", "max_tokens": 2}) as again:
        assert again.response.status_code == 200
        assert [event.event for event in again.iter_sse() if event.data][-1] == "done"


def test_a_job_that_starts_frees_its_slot(api: httpx.Client, broker: redis.Redis) -> None:
    # Detached: its stream's end cancels nothing, so only the worker's start can free the slot.
    response, _ = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 2, "detach": True})
    job_id = response.headers["X-Job-Id"]

    job = wait_until_ended(api, job_id)

    assert job["state"] in ("done", "error")
    assert broker.zscore(admission_key("cpu"), job_id) is None


def test_an_openai_request_over_the_limit_is_413(api: httpx.Client) -> None:
    body = {"model": "lumimaid", "messages": [{"role": "user", "content": "x" * (2 * MIB)}]}

    response = api.post("/v1/chat/completions", content=json.dumps(body))

    assert response.status_code == 413
    assert str(DEFAULT_BODY_LIMIT) in response.json()["error"]["message"]
