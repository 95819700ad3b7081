"""Fit a prompt into the model's context window by dropping its oldest unpinned messages.

Runs on the worker, which holds the model's tokenizer: the count is of the real prompt tokens, with
the chat template applied. Dropping more messages never makes a prompt longer, so the fewest drops
that fit are found by bisection, a handful of tokenizations whatever the length of the history.
"""

import logging
from collections.abc import Callable

from schemas.jobs import ChatMessage, ContextFit

log = logging.getLogger(__name__)


def _droppable(messages: list[ChatMessage], fit: ContextFit) -> tuple[int, int]:
    """Where the droppable messages start, and how many there are."""
    head = min(fit.keep_first, len(messages))
    return head, max(len(messages) - fit.keep_last - head, 0)


def shortest_prompt(messages: list[ChatMessage], fit: ContextFit | None) -> list[ChatMessage]:
    """What is left once every droppable message is dropped: if even this does not fit the
    context window, nothing will (the API refuses such a prompt before enqueueing it)."""
    if fit is None:
        return messages
    head, droppable = _droppable(messages, fit)
    return messages[:head] + messages[head + droppable :]


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
    head, droppable = _droppable(messages, fit)

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
