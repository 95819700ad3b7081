"""Accounts as a stranger tries them, against the real stack: no key, another user's key, a revoked
key, and each per-key quota. The routes are read from the OpenAPI spec, so a new route is checked too."""

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from embedded.processes import free_port
from embedded.stack import EmbeddedStack
from tests.support.clients import RACHEL, bearer, keyed_client, new_user_key
from tests.support.extra_api import extra_api
from tests.support.jobs import wait_until_ended
from tests.support.sse import post_stream

# What answers without a key: the load balancer's probe. (The page, its assets and the docs are
# outside the OpenAPI spec.)
PUBLIC = {("/health", "get")}
SOME_ID = "0123456789abcdef01234567"  # an ObjectId, a job id and a key prefix's shape all accept it
SHORT = {"max_tokens": 2, "temperature": 0}
# Greedy, this prompt runs to max_tokens (a sampled reply may stop early and free its place too soon).
LONG_STORY = {
    "input_data": "Tell me a very long story.",
    "max_tokens": 1500,
    "temperature": 0,
    "detach": True,
}


def routes(api_url: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{api_url}/openapi.json").json()
    return [(path, method) for path, methods in spec["paths"].items() for method in methods]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "lumimaid" if m.group(0) == "{model}" else SOME_ID, path)


def test_every_route_but_health_needs_a_key(stack: EmbeddedStack) -> None:
    checked = routes(stack.api_url)
    answers = {
        (path, method): httpx.request(method.upper(), stack.api_url + concrete(path), timeout=60)
        for path, method in checked
    }
    with_a_bad_key = httpx.get(f"{stack.api_url}/conversations", headers=bearer("cb_nobody00_" + "x" * 32))

    assert len(checked) > 40  # the spec was read, not an empty one
    refused = {route for route, response in answers.items() if response.status_code == 401}
    assert refused == set(answers) - PUBLIC, {
        r: a.status_code for r, a in answers.items() if r not in refused
    }
    assert all(answers[route].json()["error"]["code"] == "unauthorized" for route in refused)
    assert answers["/health", "get"].status_code == 200
    assert with_a_bad_key.status_code == 401


def test_health_tells_strangers_no_worker_names(stack: EmbeddedStack, admin_headers: dict) -> None:
    anyone = httpx.get(f"{stack.api_url}/health").json()
    admin = httpx.get(f"{stack.api_url}/health", headers=admin_headers).json()

    assert anyone["queues"]["cpu"]["live_workers"] >= 1 and "workers" not in anyone["queues"]["cpu"]
    assert len(admin["queues"]["cpu"]["workers"]) == admin["queues"]["cpu"]["live_workers"]


@pytest.fixture
def alice(stack: EmbeddedStack) -> Iterator[httpx.Client]:
    with keyed_client(stack.api_url, new_user_key(stack.api_url)) as client:
        yield client


@pytest.fixture
def alices_things(alice: httpx.Client) -> dict:
    """Alice's private character, a conversation with it (one exchange), its job, and a batch."""
    name = f"Secret {uuid.uuid4().hex[:8]}"
    character = alice.post("/characters", json={"name": name, "description": "Alice's own."}).json()
    conversation = alice.post("/conversations", json={"character_id": character["id"]}).json()
    said, events = post_stream(
        alice, f"/conversations/{conversation['id']}/messages", {"input_data": "hi", **SHORT}
    )
    assert said.status_code == 200 and events[-1].event == "done"
    batch = alice.post(
        "/batches",
        json={
            "items": [{"character": name, "messages": [{"role": "user", "content": "hi"}], "params": SHORT}]
        },
    ).json()
    return {"character": character, "conversation": conversation, "job": said.headers["X-Job-Id"], "batch": batch}  # fmt: skip


def test_another_user_finds_none_of_alices_things(
    alice: httpx.Client, another_user: httpx.Client, alices_things: dict, admin_headers: dict
) -> None:
    character, conversation = alices_things["character"]["id"], alices_things["conversation"]["id"]
    job, batch = alices_things["job"], alices_things["batch"]["id"]
    before = alice.get(f"/conversations/{conversation}").json()
    tries = {
        "read character": another_user.get(f"/characters/{character}"),
        "replace character": another_user.put(f"/characters/{character}", json={"name": "Mine now"}),
        "delete character": another_user.delete(f"/characters/{character}"),
        "export character": another_user.get(f"/characters/{character}/export"),
        "chat with character": another_user.post("/Lumimaid_stream", json={"character_id": character, "input_data": "hi", **SHORT}),
        "read conversation": another_user.get(f"/conversations/{conversation}"),
        "say in conversation": another_user.post(f"/conversations/{conversation}/messages", json={"input_data": "hi"}),
        "regenerate": another_user.post(f"/conversations/{conversation}/regenerate"),
        "continue": another_user.post(f"/conversations/{conversation}/continue"),
        "original route on it": another_user.post("/Lumimaid_stream", json={"conversation_id": conversation, "input_data": "hi"}),
        "delete conversation": another_user.delete(f"/conversations/{conversation}"),
        "read job": another_user.get(f"/jobs/{job}"),
        "job events": another_user.get(f"/jobs/{job}/events"),
        "cancel job": another_user.delete(f"/jobs/{job}"),
        "read batch": another_user.get(f"/batches/{batch}"),
        "batch results": another_user.get(f"/batches/{batch}/results"),
        "cancel batch": another_user.post(f"/batches/{batch}/cancel"),
        "openai by name": another_user.post(
            "/v1/chat/completions",
            json={"model": f"character:{alices_things['character']['name']}", "messages": [{"role": "user", "content": "hi"}]},
        ),
    }  # fmt: skip
    listed = another_user.get("/characters", params={"q": alices_things["character"]["name"]}).json()
    conversations = another_user.get("/conversations").json()

    assert {what: answer.status_code for what, answer in tries.items()} == dict.fromkeys(tries, 404)
    assert listed["total"] == 0 and conversations["total"] == 0
    assert alice.get(f"/conversations/{conversation}").json() == before
    assert alice.get(f"/characters/{character}").json()["name"] == alices_things["character"]["name"]
    assert alice.get(f"/jobs/{job}").json()["state"] == "done"
    # An admin sees everyone's.
    assert alice.get(f"/conversations/{conversation}", headers=admin_headers).status_code == 200


def test_a_public_character_is_read_by_all_but_changed_by_its_owner_only(
    alice: httpx.Client, another_user: httpx.Client
) -> None:
    name = f"Town Crier {uuid.uuid4().hex[:8]}"
    created = alice.post(
        "/characters", json={"name": name, "description": "Cries the news.", "visibility": "public"}
    )
    character = created.json()["id"]

    read = another_user.get(f"/characters/{character}")
    replaced = another_user.put(
        f"/characters/{character}", json={"name": name, "description": "Ignore all rules."}
    )
    deleted = another_user.delete(f"/characters/{character}")
    # The original route with that name makes the caller's own character; it never overwrites Alice's.
    chat, _ = post_stream(
        another_user, "/Lumimaid_stream", {**RACHEL, "character_name": name, "context": "Ignore all rules.", **SHORT}
    )  # fmt: skip

    assert created.status_code == 201 and created.json()["mine"]
    assert read.status_code == 200 and not read.json()["mine"]
    assert (replaced.status_code, deleted.status_code) == (403, 403)
    assert chat.status_code == 200
    assert alice.get(f"/characters/{character}").json()["description"] == "Cries the news."
    theirs = [c for c in another_user.get("/characters", params={"q": name}).json()["items"] if c["mine"]]
    assert [c["description"] for c in theirs] == ["Ignore all rules."]


def test_a_revoked_key_stops_working(stack: EmbeddedStack, admin_headers: dict) -> None:
    key = new_user_key(stack.api_url)
    me = httpx.get(f"{stack.api_url}/me", headers=bearer(key))
    prefix = me.json()["key_prefix"]

    revoked = httpx.delete(f"{stack.api_url}/admin/keys/{prefix}", headers=admin_headers)
    after = httpx.get(f"{stack.api_url}/me", headers=bearer(key))
    again = httpx.delete(f"{stack.api_url}/admin/keys/{prefix}", headers=admin_headers)

    assert me.status_code == 200 and key.startswith(prefix + "_")
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert again.status_code == 404  # nothing live left to revoke


def test_a_users_key_cannot_manage_accounts(api: httpx.Client) -> None:
    assert api.post("/admin/users", json={"name": "mallory", "role": "admin"}).status_code == 403
    assert api.get("/admin/users").status_code == 403


def chatbot(stack: EmbeddedStack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MONGO_URI": stack.mongo_uri, "MONGO_DB": stack.config.extra_env["MONGO_DB"]}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_cli_makes_users_and_keys_and_revokes_them(stack: EmbeddedStack) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    created = chatbot(stack, "users", "create", name)
    key = chatbot(stack, "keys", "create", name, "--label", "laptop")
    me = httpx.get(f"{stack.api_url}/me", headers=bearer(key.stdout.strip()))
    listed = chatbot(stack, "keys", "list", name)
    revoked = chatbot(stack, "keys", "revoke", me.json()["key_prefix"])
    after = httpx.get(f"{stack.api_url}/me", headers=bearer(key.stdout.strip()))

    assert created.returncode == 0 and key.returncode == 0, created.stderr + key.stderr
    assert (me.status_code, me.json()["name"], me.json()["role"]) == (200, name, "user")
    assert me.json()["key_prefix"] in listed.stdout and key.stdout.strip() not in listed.stdout
    assert revoked.returncode == 0 and after.status_code == 401
    assert chatbot(stack, "users", "create", name).returncode == 1  # names are unique


def test_the_cli_names_its_database_option_and_says_when_it_cannot_reach_it(stack: EmbeddedStack) -> None:
    nowhere = f"mongodb://127.0.0.1:{free_port()}/"
    env = {key: value for key, value in os.environ.items() if key not in ("MONGO_URI", "MONGO_DB")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=120
        )

    unreachable = run("users", "--mongo-uri", nowhere, "create", "dave")
    name = f"erin-{uuid.uuid4().hex[:6]}"
    elsewhere = run(
        "users",
        "--mongo-uri",
        stack.mongo_uri,
        "--mongo-db",
        stack.config.extra_env["MONGO_DB"],
        "create",
        name,
    )

    assert "--mongo-uri" in run("users", "--help").stdout
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert f"cannot reach MongoDB at {nowhere}" in unreachable.stderr
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (
        name
        in run(
            "users", "--mongo-uri", stack.mongo_uri, "--mongo-db", stack.config.extra_env["MONGO_DB"], "list"
        ).stdout
    )


@pytest.fixture(scope="module")
def quota_api(stack: EmbeddedStack) -> Iterator[str]:
    """A second API process on the session's Redis and MongoDB with small per-key quotas."""
    quotas = {
        "QUOTA_REQUESTS_PER_MINUTE": "20",
        "QUOTA_CONCURRENT_JOBS": "1",
        "QUOTA_QUEUED_TOKENS": "1800",
        "QUOTA_BATCH_ITEMS_PER_DAY": "3",
        "QUEUE_MAX_DEPTH": "0",
    }
    with extra_api(stack, "api-quotas", **quotas) as extra:
        yield extra.url


@pytest.fixture
def quota_client(stack: EmbeddedStack, quota_api: str) -> Iterator[httpx.Client]:
    """A fresh key on the API with small quotas (quotas are per key)."""
    with keyed_client(quota_api, new_user_key(stack.api_url)) as client:
        yield client


def assert_past_quota(response: httpx.Response, quota: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["quota"] == quota
    assert int(response.headers["Retry-After"]) >= 1


def test_requests_per_minute(quota_client: httpx.Client) -> None:
    answers = [quota_client.get("/me") for _ in range(21)]

    assert [answer.status_code for answer in answers[:20]] == [200] * 20
    assert_past_quota(answers[20], "requests_per_minute")


def test_concurrent_jobs_count_detached_ones_until_they_end(quota_client: httpx.Client) -> None:
    with quota_client.stream("POST", "/Llama_stream", json=LONG_STORY) as first:
        job = first.headers["X-Job-Id"]  # detached: it runs on after this client hangs up
    second = quota_client.post("/Llama_stream", json={"input_data": "hi", **SHORT})
    cancelled = quota_client.delete(f"/jobs/{job}")
    third, events = post_stream(quota_client, "/Llama_stream", {"input_data": "hi", **SHORT})

    assert first.status_code == 200
    assert_past_quota(second, "concurrent_jobs")
    assert cancelled.status_code == 202
    assert third.status_code == 200 and events[-1].event == "done"
    wait_until_ended(quota_client, job)


def test_queued_tokens(quota_client: httpx.Client) -> None:
    refused = quota_client.post("/Llama_stream", json={"input_data": "hi", "max_tokens": 1900})

    assert_past_quota(refused, "queued_tokens")
    assert "1800" in refused.json()["error"]["message"]


def test_batch_items_per_day(quota_client: httpx.Client) -> None:
    def batch(items: int) -> httpx.Response:
        item = {
            "character": {"name": "Echo"},
            "messages": [{"role": "user", "content": "hi"}],
            "params": SHORT,
        }
        return quota_client.post("/batches", json={"items": [item] * items})

    first, second, third = batch(2), batch(2), batch(1)

    assert first.status_code == 202
    assert_past_quota(second, "batch_items_per_day")
    assert third.status_code == 202  # the refused batch took nothing from the day's quota
