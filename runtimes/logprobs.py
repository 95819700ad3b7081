"""A generated token's logprob entry in OpenAI's shape, from a step's log-softmax over the vocabulary;
the same for every runtime."""

from collections.abc import Callable

import numpy as np

from schemas.events import TokenLogprob, TopLogprob


def token_logprob(
    logprobs: np.ndarray, token: int, top_n: int, piece: Callable[[int], bytes]
) -> TokenLogprob:
    """The chosen token's entry with the `top_n` most likely tokens, most likely first; `piece` gives
    a token's bytes."""
    top = np.argpartition(logprobs, -top_n)[-top_n:] if top_n else np.array([], dtype=int)
    top = top[np.argsort(-logprobs[top], kind="stable")]
    return TokenLogprob(
        **_candidate(token, logprobs, piece).model_dump(),
        top_logprobs=[_candidate(int(other), logprobs, piece) for other in top],
    )


def _candidate(token: int, logprobs: np.ndarray, piece: Callable[[int], bytes]) -> TopLogprob:
    raw = piece(token)
    return TopLogprob(
        token=raw.decode("utf-8", errors="replace"), logprob=float(logprobs[token]), bytes=list(raw)
    )
