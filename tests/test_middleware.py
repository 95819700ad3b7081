"""The original's request filters, on the real middleware; the API's access log."""

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.http.middleware import ClientFilterMiddleware, load_blocked_agents
from embedded.stack import EmbeddedStack
from settings import PROJECT_ROOT
from tests.waiting import wait_until


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


def test_bot_user_agents_are_refused_with_403(api) -> None:
    response = api.get("/health", headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_browsers_are_served(api) -> None:
    assert (
        api.get(
            "/health", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
        ).status_code
        == 200
    )


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


def test_every_request_gets_a_line_in_the_api_log_without_its_key(
    stack: EmbeddedStack, api, api_key: str
) -> None:
    missing = f"/characters/{uuid.uuid4().hex[:24]}"
    api.get(missing)
    api.get("/health", headers={"User-Agent": "Googlebot/2.1"})

    def lines() -> list[str]:
        text = (stack.log_dir / "api.log").read_text(errors="replace")
        return [line for line in text.splitlines() if "api.access" in line]

    logged = wait_until(
        lines, lambda found: any(f'"GET {missing}" 404' in line for line in found), what="access log"
    )
    assert any('127.0.0.1 "GET /health" 403' in line for line in logged)
    assert not any(api_key in line for line in logged)
