"""Reading a chat stream the way a web client does."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import httpx
from httpx_sse import EventSource, ServerSentEvent, connect_sse

from tests.support.clients import RACHEL

DETACHED = {**RACHEL, "max_tokens": 100, "temperature": 0, "detach": True}


@dataclass
class StreamEvent:
    id: str
    event: str
    data: dict


def iter_events(source: EventSource) -> Iterator[ServerSentEvent]:
    """The stream's events as a browser dispatches them: httpx-sse also yields an empty event (with
    the last id) for the keep-alive comment the server sends every 15 s; the SSE spec drops those."""
    return (sse for sse in source.iter_sse() if sse.data)


def post_stream(
    client: httpx.Client, path: str, body: dict, headers: dict | None = None
) -> tuple[httpx.Response, list[StreamEvent]]:
    """POST and read the whole SSE stream; the response is returned for its status and headers."""
    with connect_sse(client, "POST", path, json=body, headers=dict(headers or {})) as source:
        response = source.response
        if response.status_code != 200:
            response.read()
            return response, []
        events = [StreamEvent(sse.id, sse.event, json.loads(sse.data)) for sse in iter_events(source)]
    return response, events


def streamed_text(events: list[StreamEvent]) -> str:
    return "".join(event.data["text"] for event in events if event.event == "token")


def read_events(api: httpx.Client, path: str, headers: dict | None = None, limit: int | None = None):
    """GET an SSE route; its response and (the first `limit` of) its events."""
    with connect_sse(api, "GET", path, headers=headers or {}) as source:
        events = [
            StreamEvent(sse.id, sse.event, json.loads(sse.data)) for sse in islice(iter_events(source), limit)
        ]
        return source.response, events


def start_detached(api: httpx.Client, tokens: int, body: dict = DETACHED) -> tuple[str, list[StreamEvent]]:
    """POST a detached chat, read `tokens` events, hang up (the job goes on)."""
    with connect_sse(api, "POST", "/Lumimaid_stream", json=body) as source:
        seen = [
            StreamEvent(sse.id, sse.event, json.loads(sse.data))
            for sse in islice(iter_events(source), tokens)
        ]
        return source.response.headers["X-Job-Id"], seen
