"""The original's request filters: an IP allowlist for chat and docs routes, bot User-Agents, CORS."""

import ipaddress
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.errors import error_response
from settings import Settings

# Routes behind the IP allowlist (the original guarded chat and the docs; the rest run the models too).
ALLOWLISTED_PREFIXES = (
    "/Lumimaid_stream",
    "/Llama_stream",
    "/conversations",
    "/jobs",
    "/v1",
    "/batches",
    "/docs",
    "/redoc",
    "/openapi.json",
)


def load_blocked_agents(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    return [agent.lower() for agent in document.get("blocked_user_agents", [])]


class ClientFilterMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp, allowlist: list[str], blocked_agents: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(cidr, strict=False) for cidr in allowlist]
        self.blocked_agents = blocked_agents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal:
                await error_response(403, "forbidden", refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        agent = dict(scope.get("headers", [])).get(b"user-agent", b"").decode("latin-1").lower()
        if any(blocked in agent for blocked in self.blocked_agents):
            return "automated clients (bots) are not served"
        if self.networks and scope["path"].startswith(ALLOWLISTED_PREFIXES):
            host = (scope.get("client") or ("", 0))[0]
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return "client address unknown"
            if not any(address in network for network in self.networks):
                return f"client address {host} is not allowed"
        return None


def install_middleware(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        ClientFilterMiddleware,
        allowlist=settings.ip_allowlist,
        blocked_agents=load_blocked_agents(settings.bot_config_file),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["X-Job-Id", "X-Conversation-Id"],
    )
