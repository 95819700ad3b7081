"""`seed` makes a sampled reply reproducible on both runtimes: the same seed gives the same text, another
seed another text (at temperature 1, where sampling has room to differ)."""

import httpx
import pytest

from tests.support.clients import RACHEL
from tests.support.sse import post_stream, streamed_text

SAMPLED = {"max_tokens": 24, "temperature": 1.0, "top_p": 1.0}


def reply(api: httpx.Client, path: str, body: dict, seed: int) -> str:
    response, events = post_stream(api, path, {**body, **SAMPLED, "seed": seed})
    assert response.status_code == 200 and events[-1].event == "done", events[-1:]
    return streamed_text(events)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Lumimaid_stream", RACHEL),  # llama.cpp runtime
        ("/Llama_stream", {"input_data": "Tell me a story about a fox."}),  # transformers runtime
    ],
    ids=["llama_cpp", "transformers"],
)
def test_the_same_seed_gives_the_same_reply_and_another_seed_another(
    api: httpx.Client, path: str, body: dict
) -> None:
    first = reply(api, path, body, seed=1234)
    again = reply(api, path, body, seed=1234)
    other = reply(api, path, body, seed=98765)

    assert first and first == again
    assert other != first
