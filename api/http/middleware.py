"""The request filters at the API's edge: forwarded headers from trusted proxies only, an IP
allowlist on every route but /health, bot User-Agents, CORS for the configured origins, body limits."""

import ipaddress
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.http.access_log import AccessLogMiddleware
from api.http.body_limit import BodyLimitMiddleware
from api.http.errors import error_response
from settings import Settings

# The one route outside the IP allowlist: load balancers and orchestrators probe it from anywhere.
OPEN_PATHS = ("/health",)

# What a browser page of another allowed origin may send (the API key headers included).
CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "Last-Event-ID", "Accept"]


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
        if self.networks and scope["path"] not in OPEN_PATHS:
            host = (scope.get("client") or ("", 0))[0]
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return "client address unknown"
            if not any(address in network for network in self.networks):
                return f"client address {host} is not allowed"
        return None


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: forwarded headers are read first, then the access log, CORS, the filters,
    the body limit.

    uvicorn is started with --no-proxy-headers (its own default trusts 127.0.0.1, so any local
    client could claim any address); the client's address is taken from X-Forwarded-For only when
    the connection comes from one of FORWARDED_ALLOW_IPS."""
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(
        ClientFilterMiddleware,
        allowlist=settings.ip_allowlist,
        blocked_agents=load_blocked_agents(settings.bot_config_file),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        expose_headers=["X-Job-Id", "X-Conversation-Id", "Retry-After"],
    )
    app.add_middleware(AccessLogMiddleware)
    if settings.forwarded_allow_ips:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
