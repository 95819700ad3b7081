"""The original's request filters, on the real middleware."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.http.middleware import ClientFilterMiddleware, load_blocked_agents
from settings import PROJECT_ROOT


def filtered_app(allowlist: list[str], client_address: str) -> TestClient:
    """In-process: the address is only what the ASGI scope says, no traffic is sent."""
    app = FastAPI()
    app.get("/Llama_stream")(lambda: {"ok": True})
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


def test_ip_allowlist_guards_chat_routes_only() -> None:
    client = filtered_app(["10.0.0.0/8"], client_address="203.0.113.7")

    chat = client.get("/Llama_stream")
    health = client.get("/health")

    assert chat.status_code == 403
    assert "not allowed" in chat.json()["error"]["message"]
    assert health.status_code == 200


def test_allowed_addresses_reach_chat_routes() -> None:
    client = filtered_app(["127.0.0.0/8", "10.0.0.0/8"], client_address="127.0.0.1")

    assert client.get("/Llama_stream").status_code == 200
