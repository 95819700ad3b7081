"""Reading a chat stream the way a web client does."""

import json
from dataclasses import dataclass

import httpx
from httpx_sse import connect_sse


@dataclass
class StreamEvent:
    id: str
    event: str
    data: dict


def post_stream(
    client: httpx.Client, path: str, body: dict, headers: dict | None = None
) -> tuple[httpx.Response, list[StreamEvent]]:
    """POST and read the whole SSE stream; the response is returned for its status and headers."""
    with connect_sse(client, "POST", path, json=body, headers=dict(headers or {})) as source:
        response = source.response
        if response.status_code != 200:
            response.read()
            return response, []
        # A keep-alive ping (an SSE comment, sent every 15 s) reaches httpx-sse as an empty event.
        events = [
            StreamEvent(sse.id, sse.event, json.loads(sse.data)) for sse in source.iter_sse() if sse.data
        ]
    return response, events


def streamed_text(events: list[StreamEvent]) -> str:
    return "".join(event.data["text"] for event in events if event.event == "token")
