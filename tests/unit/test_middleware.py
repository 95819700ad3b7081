"""The original's request filters and the API's access log, on the real middleware in-process (the bot
filter on the running API: tests/test_middleware.py)."""

import logging
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.http.middleware import ClientFilterMiddleware, install_middleware, load_blocked_agents
from settings import PROJECT_ROOT, Settings


def filtered_app(allowlist: list[str], client_address: str) -> TestClient:
    """In-process: the address is only what the ASGI scope says, no traffic is sent."""
    app = FastAPI()
    app.get("/Llama_stream")(lambda: {"ok": True})
    app.get("/characters")(lambda: {"ok": True})
    app.get("/metrics")(lambda: {"ok": True})
    app.get("/health")(lambda: {"ok": True})
    app.add_middleware(
        ClientFilterMiddleware,
        allowlist=allowlist,
        blocked_agents=load_blocked_agents(PROJECT_ROOT / "bot.yaml"),
    )
    return TestClient(app, client=(client_address, 50000))


def test_ip_allowlist_guards_every_route_but_health() -> None:
    client = filtered_app(["10.0.0.0/8"], client_address="203.0.113.7")

    refused = [client.get(path) for path in ("/Llama_stream", "/characters", "/metrics")]
    health = client.get("/health")

    assert [response.status_code for response in refused] == [403, 403, 403]
    assert "not allowed" in refused[0].json()["error"]["message"]
    assert health.status_code == 200


def test_allowed_addresses_reach_chat_routes() -> None:
    client = filtered_app(["127.0.0.0/8", "10.0.0.0/8"], client_address="127.0.0.1")

    assert client.get("/Llama_stream").status_code == 200


def test_every_request_gets_a_line_in_the_access_log_without_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In-process, on the middleware stack the API installs: a served request and a refused one."""
    app = FastAPI()
    app.get("/characters/{character_id}")(lambda character_id: {"ok": True})
    install_middleware(app, Settings(forwarded_allow_ips=["127.0.0.1"]))
    client = TestClient(app, client=("127.0.0.1", 50000))
    key = f"cb_{uuid.uuid4().hex}"

    with caplog.at_level(logging.INFO, logger="api.access"):
        client.get(
            "/characters/abc", headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "203.0.113.9"}
        )
        client.get("/characters/abc", headers={"User-Agent": "Googlebot/2.1"})

    lines = [record.getMessage() for record in caplog.records if record.name == "api.access"]
    assert lines[0].startswith('203.0.113.9 "GET /characters/abc" 200 ')  # the client, not the proxy
    assert lines[1].startswith('127.0.0.1 "GET /characters/abc" 403 ')  # a refusal is logged too
    assert not any(key in line for line in lines)
