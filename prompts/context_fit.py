"""Fit a prompt into the model's context window by dropping its oldest unpinned messages.

Runs on the worker, which holds the model's tokenizer: the count is of the real prompt tokens, with
the chat template applied. Dropping more messages never makes a prompt longer, so the fewest drops
that fit are found by bisection, a handful of tokenizations whatever the length of the history.
"""

import logging
from collections.abc import Callable

from schemas.jobs import ChatMessage, ContextFit

log = logging.getLogger(__name__)


def fit_to_window(
    messages: list[ChatMessage],
    fit: ContextFit | None,
    budget: int,
    tokenize: Callable[[list[ChatMessage]], list[int]],
) -> list[ChatMessage]:
    """`messages` without the oldest droppable ones, so their prompt is at most `budget` tokens;
    when even dropping all of them is not enough, that shortest prompt (the runtime then refuses or
    shortens the reply)."""
    if fit is None or len(tokenize(messages)) <= budget:
        return messages
    head = min(fit.keep_first, len(messages))
    droppable = max(len(messages) - fit.keep_last - head, 0)

    def without(count: int) -> list[ChatMessage]:
        return messages[:head] + messages[head + count :]

    low, high = 0, droppable  # low does not fit; the answer is in (low, high]
    if len(tokenize(without(high))) <= budget:
        while high - low > 1:
            middle = (low + high) // 2
            if len(tokenize(without(middle))) <= budget:
                high = middle
            else:
                low = middle
    log.info("dropped the %d oldest of %d messages to fit %d prompt tokens", high, len(messages), budget)
    return without(high)
