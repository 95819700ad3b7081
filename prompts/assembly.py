"""The messages a model sees for a turn of a conversation, assembled from the character card and history.

Layout (the worker applies the chat template and may drop the oldest unpinned messages to fit):

    system    system prompt, lorebook (before_char), description, personality, scenario, lorebook
              (after_char)                                                       pinned
    system    one per example-dialogue block (<START>)                          dropped first
    ...       the history, oldest first                                         dropped next
    user      the current message                                               pinned
    system    post-history instructions                                         pinned
    assistant the reply being continued, when continuing                        pinned

`{{char}}`/`<BOT>` and `{{user}}`/`<USER>` are replaced in the card's texts, never in what users type.
"""

import re
from dataclasses import dataclass

from prompts.lorebook import active_entries
from schemas.cards import CardData
from schemas.jobs import ChatMessage, ContextFit

DEFAULT_SYSTEM_PROMPT = "You are {{char}}. Stay in character as {{char}} and reply to {{user}} in role."
DEFAULT_USER_NAME = "User"

_MACRO = re.compile(r"\{\{(char|user)\}\}|<(BOT|USER)>", re.IGNORECASE)
_EXAMPLE_BLOCK = re.compile(r"<START>", re.IGNORECASE)


@dataclass
class Prompt:
    messages: list[ChatMessage]
    context_fit: ContextFit


def substitute_macros(text: str, char: str, user: str) -> str:
    """Replace the card macros in one pass (so a name containing `{{user}}` stays as it is)."""
    values = {"char": char, "bot": char, "user": user}
    return _MACRO.sub(lambda match: values[(match.group(1) or match.group(2)).lower()], text)


def card_greetings(card: CardData, user_name: str) -> list[str]:
    """The greeting and the alternate greetings, macros filled in, in the card's order."""
    return [
        substitute_macros(text, card.name, user_name) for text in (card.first_mes, *card.alternate_greetings)
    ]


def _character_text(card: CardData, recent: list[str]) -> str:
    lore = active_entries(card.character_book, recent) if card.character_book else []
    before = [entry.content for entry in lore if entry.position != "after_char"]
    after = [entry.content for entry in lore if entry.position == "after_char"]
    system = card.system_prompt.replace("{{original}}", DEFAULT_SYSTEM_PROMPT) or DEFAULT_SYSTEM_PROMPT
    parts = [
        system,
        *before,
        card.description,
        f"{{{{char}}}}'s personality: {card.personality}" if card.personality.strip() else "",
        f"Scenario: {card.scenario}" if card.scenario.strip() else "",
        *after,
    ]
    return "\n\n".join(part.strip() for part in parts if part.strip())


def example_blocks(mes_example: str) -> list[str]:
    return [
        f"Example dialogue:\n{block.strip()}" for block in _EXAMPLE_BLOCK.split(mes_example) if block.strip()
    ]


def _exchange_start(history: list[ChatMessage], continuing: bool) -> int:
    """Where the current exchange begins: the last user message (and what follows it)."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].role == "user":
            return index
    return max(len(history) - 1, 0) if continuing else len(history)


def _pinned(head: ChatMessage, body: list[ChatMessage], tail: list[ChatMessage]) -> Prompt:
    return Prompt([head, *body, *tail], ContextFit(keep_first=1, keep_last=len(tail)))


def _mark_prefill(tail: list[ChatMessage], continuing: bool) -> list[ChatMessage]:
    if continuing and tail and tail[-1].role == "assistant":
        tail[-1] = tail[-1].model_copy(update={"prefill": True})
    return tail


def character_prompt(
    card: CardData, history: list[ChatMessage], user_name: str = DEFAULT_USER_NAME, continuing: bool = False
) -> Prompt:
    """`history` ends with the user's new message, or (`continuing`) with the reply to continue."""

    def fill(text: str) -> str:
        return substitute_macros(text, card.name, user_name)

    recent = [message.content for message in history if message.role != "system"]
    head = ChatMessage(role="system", content=fill(_character_text(card, recent)))
    examples = [ChatMessage(role="system", content=fill(block)) for block in example_blocks(card.mes_example)]
    start = _exchange_start(history, continuing)
    tail = _mark_prefill(list(history[start:]), continuing)
    if card.post_history_instructions.strip():
        instructions = ChatMessage(role="system", content=fill(card.post_history_instructions))
        at = len(tail) - 1 if continuing and tail else len(tail)
        tail.insert(at, instructions)
    return _pinned(head, [*examples, *history[:start]], tail)


def assistant_prompt(system_prompt: str, history: list[ChatMessage], continuing: bool = False) -> Prompt:
    """The plain assistant: its system prompt, then the history."""
    start = _exchange_start(history, continuing)
    tail = _mark_prefill(list(history[start:]), continuing)
    return _pinned(ChatMessage(role="system", content=system_prompt), list(history[:start]), tail)
