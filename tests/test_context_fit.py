"""A long conversation is cut from its oldest turns to fit the context window, counted in real tokens."""

import pytest

from prompts.assembly import character_prompt
from prompts.context_fit import fit_to_window
from schemas.cards import CardData
from schemas.jobs import ChatMessage
from tests.cards_fixtures import SERAPHINA_V2
from workers.llama_cpp_runtime import LlamaCppRuntime

REPLY_BUDGET = 256


def long_conversation(turns: int) -> list[ChatMessage]:
    history = [ChatMessage(role="assistant", content="*Seraphina leans over you.* You're awake.")]
    for turn in range(turns):
        history.append(
            ChatMessage(role="user", content=f"Question {turn}: what grows in the glade in spring?")
        )
        history.append(
            ChatMessage(role="assistant", content=f"Answer {turn}: moss, ferns and silver mushrooms.")
        )
    history.append(ChatMessage(role="user", content="And what grows there in winter?"))
    return history


@pytest.fixture(scope="module")
def prompt():
    return character_prompt(CardData.model_validate(SERAPHINA_V2["data"]), long_conversation(120), "Alex")


def test_history_is_trimmed_to_leave_the_reply_budget(gemma: LlamaCppRuntime, prompt) -> None:
    budget = gemma.n_ctx - REPLY_BUDGET
    assert len(gemma.prompt_tokens(prompt.messages)) > gemma.n_ctx  # too long as it is

    fitted = fit_to_window(prompt.messages, prompt.context_fit, budget, gemma.prompt_tokens)

    assert len(gemma.prompt_tokens(fitted)) <= budget
    dropped = len(prompt.messages) - len(fitted)
    assert fitted == prompt.messages[:1] + prompt.messages[1 + dropped :]  # the oldest went, in order
    one_fewer = prompt.messages[:1] + prompt.messages[dropped:]
    assert len(gemma.prompt_tokens(one_fewer)) > budget  # and no more than needed


def test_the_character_and_the_current_exchange_are_never_dropped(gemma: LlamaCppRuntime, prompt) -> None:
    fitted = fit_to_window(
        prompt.messages, prompt.context_fit, gemma.n_ctx - REPLY_BUDGET, gemma.prompt_tokens
    )

    assert fitted[0] == prompt.messages[0]
    assert fitted[-2:] == prompt.messages[-2:]
    assert fitted[-2].content == "And what grows there in winter?"


def test_a_prompt_that_fits_is_sent_whole(gemma: LlamaCppRuntime) -> None:
    short = character_prompt(CardData(name="Luna"), long_conversation(2))

    assert fit_to_window(short.messages, short.context_fit, 1000, gemma.prompt_tokens) == short.messages


def test_a_job_without_a_context_fit_is_never_cut(gemma: LlamaCppRuntime, prompt) -> None:
    assert fit_to_window(prompt.messages, None, 10, gemma.prompt_tokens) == prompt.messages
