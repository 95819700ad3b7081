"""A long conversation is cut from its oldest turns to fit the context window: the fit itself, counted
with a tokenizer of one token a word (in real tokens and a worker's jobs: tests/test_context_fit.py)."""

import pytest

from prompts.context_fit import fit_to_window
from schemas.jobs import ChatMessage, ContextFit


def words(messages: list[ChatMessage]) -> list[int]:
    """A tokenizer of one token a word (the synthetic runtime's): prompt lengths known to the token."""
    return [0] * sum(len(message.content.split()) for message in messages)


def worded(*counts: int) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=" ".join(["w"] * count)) for count in counts]


def fewest_drops(messages: list[ChatMessage], fit: ContextFit, budget: int) -> list[ChatMessage]:
    """The answer by brute force: drop the oldest droppable messages one by one until it fits."""
    head = min(fit.keep_first, len(messages))
    droppable = max(len(messages) - fit.keep_last - head, 0)
    for count in range(droppable + 1):
        kept = messages[:head] + messages[head + count :]
        if len(words(kept)) <= budget:
            return kept
    return messages[:head] + messages[head + droppable :]


@pytest.mark.parametrize(
    "fit", [ContextFit(keep_first=1, keep_last=1), ContextFit(keep_first=0, keep_last=2), ContextFit()]
)
def test_the_fewest_oldest_messages_are_dropped_for_every_budget(fit: ContextFit) -> None:
    messages = worded(5, 1, 2, 0, 3, 1, 4, 2, 1, 0, 3)  # empty messages: several drop counts fit alike

    for budget in range(len(words(messages)) + 2):
        assert fit_to_window(messages, fit, budget, words) == fewest_drops(messages, fit, budget), budget


def test_a_prompt_exactly_at_the_budget_is_sent_whole(caplog: pytest.LogCaptureFixture) -> None:
    messages = worded(5, 1, 2, 3)

    assert fit_to_window(messages, ContextFit(keep_first=1), 11, words) == messages
    assert fit_to_window(messages, ContextFit(keep_first=1), 10, words) == worded(5, 2, 3)
    assert caplog.messages == ["dropped the 1 oldest of 4 messages to fit 10 prompt tokens"]


def test_when_nothing_may_be_dropped_the_prompt_is_sent_whole_even_over_the_budget() -> None:
    messages = worded(5, 1, 2)

    assert fit_to_window(messages, ContextFit(keep_first=2, keep_last=1), 3, words) == messages
    assert fit_to_window(messages, ContextFit(keep_first=9, keep_last=0), 3, words) == messages
    assert fit_to_window(messages, ContextFit(keep_first=0, keep_last=9), 3, words) == messages


def test_when_dropping_every_droppable_message_is_not_enough_that_shortest_prompt_is_sent() -> None:
    messages = worded(5, 1, 2, 3, 4)

    assert fit_to_window(messages, ContextFit(keep_first=1, keep_last=1), 6, words) == worded(5, 4)
