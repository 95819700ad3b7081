"""Load on the session's worker: every slot of its engine taken by a long chat, for the tests of what
waits behind a full worker."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
from httpx_sse import connect_sse

from model_registry import get_registry
from tests.support.clients import RACHEL

# Greedy, this prompt runs to max_tokens (sampled, it may stop early and free the worker too soon).
LONG_STORY = {"input_data": "Tell me a very long story.", "max_tokens": 2000, "temperature": 0}


@contextmanager
def worker_full(api: httpx.Client) -> Iterator[None]:
    """As many long chats running as the worker's engine has slots, each past its first token; they
    are cancelled (their clients leave) when the block ends."""
    with ExitStack() as streams:
        for _ in range(get_registry()["lumimaid"].max_sequences):
            source = streams.enter_context(
                connect_sse(api, "POST", "/Lumimaid_stream", json={**RACHEL, **LONG_STORY})
            )
            assert source.response.status_code == 200
            events = source.iter_sse()  # kept open: a dropped iterator closes the stream (a cancel)
            streams.callback(events.close)
            assert next(events).event == "token"  # running
        yield
