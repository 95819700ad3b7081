"""What the model is sent for a character's turn: card texts with macros, lorebook, examples, history."""

import pytest

from prompts.assembly import assistant_prompt, card_greetings, character_prompt, substitute_macros
from schemas.cards import CardData
from schemas.jobs import ChatMessage
from tests.support.cards import LOREBOOK_ENTRY_CONTENT, SERAPHINA_V2

SERAPHINA = CardData.model_validate(SERAPHINA_V2["data"])


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def reply(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def system_text(card: CardData, history: list[ChatMessage]) -> str:
    return character_prompt(card, history, "Alex").messages[0].content


def card_with_entries(*entries: dict, scan_depth: int | None = None) -> CardData:
    book = {"entries": [{"keys": ["moon"], "content": "MOON-LORE", **entry} for entry in entries]}
    if scan_depth is not None:
        book["scan_depth"] = scan_depth
    return CardData(name="Luna", character_book=book)


def test_macros_name_the_character_and_the_user() -> None:
    system = system_text(SERAPHINA, [user("hello")])

    assert "Seraphina is a guardian of the forest" in system
    assert "Alex wakes up in Seraphina's cottage" in system
    assert "{{" not in system


def test_macros_in_every_spelling_are_filled_once() -> None:
    filled = substitute_macros("{{Char}} <BOT> {{USER}} <USER>", "Bot {{user}}", "Ann")

    assert filled == "Bot {{user}} Bot {{user}} Ann Ann"


def test_the_cards_system_prompt_wraps_the_default_through_original() -> None:
    system = system_text(SERAPHINA, [user("hello")])

    assert system.startswith("You are Seraphina. Stay in character as Seraphina and reply to Alex in role.")
    assert "Write Seraphina's next reply only." in system


def test_text_users_type_is_never_macro_filled() -> None:
    messages = character_prompt(SERAPHINA, [user("I am {{char}}")], "Alex").messages

    assert user("I am {{char}}") in messages


def test_a_lorebook_entry_is_present_only_when_its_key_occurs() -> None:
    without = system_text(SERAPHINA, [user("Where am I?")])
    with_key = system_text(SERAPHINA, [user("Take me to the GLADE, please.")])

    assert LOREBOOK_ENTRY_CONTENT not in without
    assert LOREBOOK_ENTRY_CONTENT in with_key
    assert with_key.index(LOREBOOK_ENTRY_CONTENT) < with_key.index("guardian of the forest")  # before_char


def test_disabled_lorebook_entries_never_appear() -> None:
    assert "cursed wolf" not in system_text(SERAPHINA, [user("Is Shadowfang near?")])


def test_constant_entries_always_appear() -> None:
    card = card_with_entries({"constant": True})

    assert "MOON-LORE" in system_text(card, [user("hello")])


def test_case_sensitive_entries_need_the_exact_case() -> None:
    card = card_with_entries({"case_sensitive": True})

    assert "MOON-LORE" not in system_text(card, [user("the Moon rises")])
    assert "MOON-LORE" in system_text(card, [user("the moon rises")])


def test_selective_entries_need_a_secondary_key_too() -> None:
    card = card_with_entries({"selective": True, "secondary_keys": ["eclipse"]})

    assert "MOON-LORE" not in system_text(card, [user("the moon rises")])
    assert "MOON-LORE" in system_text(card, [user("the moon hides in the eclipse")])


def test_entries_are_inserted_in_insertion_order() -> None:
    card = CardData(
        name="Luna",
        character_book={
            "entries": [
                {"keys": ["moon"], "content": "SECOND", "insertion_order": 20},
                {"keys": ["moon"], "content": "FIRST", "insertion_order": 10},
                {"keys": ["moon"], "content": "AFTER", "insertion_order": 0, "position": "after_char"},
            ]
        },
        description="DESCRIPTION",
    )

    system = system_text(card, [user("moon")])

    assert (
        system.index("FIRST") < system.index("SECOND") < system.index("DESCRIPTION") < system.index("AFTER")
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"keys": [""]},
        {"keys": ["", ""], "case_sensitive": True},
        {"keys": ["moon"], "selective": True, "secondary_keys": [""]},
    ],
    ids=["empty-key", "empty-key-case-sensitive", "empty-secondary-key"],
)
def test_an_empty_key_never_fires(entry: dict) -> None:
    card = card_with_entries(entry)

    for said in ("hello", "the moon rises", ""):
        assert "MOON-LORE" not in system_text(card, [user(said)]), said


def test_keys_are_looked_for_only_in_the_recent_messages() -> None:
    card = card_with_entries({}, scan_depth=2)
    history = [user("the moon"), reply("yes"), user("and the sun?")]

    assert "MOON-LORE" not in system_text(card, history)
    assert "MOON-LORE" in system_text(card, history[:2])


def test_example_dialogue_comes_before_the_history_in_its_own_messages() -> None:
    prompt = character_prompt(SERAPHINA, [reply("greeting"), user("hello")], "Alex")

    roles = [message.role for message in prompt.messages]
    assert roles == ["system", "system", "assistant", "user", "system"]
    assert prompt.messages[1].content == (
        "Example dialogue:\nAlex: Who are you?\nSeraphina: I am Seraphina, keeper of this forest."
    )


def test_post_history_instructions_follow_the_users_message_and_are_pinned() -> None:
    prompt = character_prompt(
        SERAPHINA, [reply("greeting"), user("one"), reply("two"), user("three")], "Alex"
    )

    assert prompt.messages[-2:] == [
        user("three"),
        ChatMessage(role="system", content="Keep Seraphina's reply under three sentences."),
    ]
    assert (prompt.context_fit.keep_first, prompt.context_fit.keep_last) == (1, 2)


def test_continuing_ends_with_the_reply_marked_as_prefill() -> None:
    prompt = character_prompt(SERAPHINA, [user("one"), reply("the start of")], "Alex", continuing=True)

    assert [m.role for m in prompt.messages[-3:]] == ["user", "system", "assistant"]
    assert prompt.messages[-1].prefill and prompt.messages[-1].content == "the start of"
    assert prompt.context_fit.keep_last == 3


def test_greetings_are_filled_for_the_user() -> None:
    greetings = card_greetings(SERAPHINA, "Alex")

    assert greetings == [
        "*Seraphina leans over you.* You're awake, Alex. Rest now.",
        "*Seraphina hums while tending the fire.* Oh, Alex, good morning.",
    ]


@pytest.mark.parametrize("continuing", [False, True])
def test_the_assistant_prompt_pins_its_system_prompt_and_the_current_exchange(continuing: bool) -> None:
    history = [user("one"), reply("two"), user("three"), *([reply("fo")] if continuing else [])]

    prompt = assistant_prompt("Be helpful.", history, continuing)

    assert prompt.messages[0] == ChatMessage(role="system", content="Be helpful.")
    assert prompt.messages[1:4] == history[:3]
    assert prompt.messages[-1].prefill == continuing
    assert prompt.context_fit.keep_last == (2 if continuing else 1)


def test_blank_card_fields_leave_no_empty_lines_or_labels() -> None:
    card = CardData(name="Luna", description="A moon spirit.", personality="  ", scenario="")

    assert system_text(card, [user("hi")]) == (
        "You are Luna. Stay in character as Luna and reply to Alex in role.\n\nA moon spirit."
    )


def test_personality_and_scenario_are_labelled_in_order() -> None:
    card = CardData(name="Luna", description="A moon spirit.", personality="calm", scenario="A night.")

    assert system_text(card, [user("hi")]).endswith(
        "A moon spirit.\n\nLuna's personality: calm\n\nScenario: A night."
    )


def test_the_sillytavern_case_sensitive_flag_in_extensions_is_honoured() -> None:
    card = card_with_entries({"extensions": {"case_sensitive": True}})

    assert "MOON-LORE" not in system_text(card, [user("the Moon rises")])
    assert "MOON-LORE" in system_text(card, [user("the moon rises")])


def test_a_case_sensitive_selective_entry_needs_its_secondary_key_in_the_exact_case() -> None:
    card = card_with_entries({"case_sensitive": True, "selective": True, "secondary_keys": ["Eclipse"]})

    assert "MOON-LORE" not in system_text(card, [user("the moon in the eclipse")])
    assert "MOON-LORE" in system_text(card, [user("the moon in the Eclipse")])


@pytest.mark.parametrize(
    ("scan_depth", "fires"), [(0, False), (1, True), (2, True)], ids=["depth-0", "depth-1", "depth-2"]
)
def test_the_books_scan_depth_counts_back_from_the_newest_message(scan_depth: int, fires: bool) -> None:
    card = card_with_entries({}, scan_depth=scan_depth)

    assert ("MOON-LORE" in system_text(card, [user("hello"), reply("yes"), user("the moon?")])) is fires
    assert "MOON-LORE" not in system_text(card, [user("the moon?"), reply("yes"), user("and?")])


def test_system_messages_in_the_history_do_not_trigger_the_lorebook() -> None:
    card = card_with_entries({})

    assert "MOON-LORE" not in system_text(card, [ChatMessage(role="system", content="moon"), user("hi")])


def test_continuing_a_greeting_alone_continues_that_greeting() -> None:
    prompt = character_prompt(SERAPHINA, [reply("*Seraphina smiles*")], "Alex", continuing=True)

    assert prompt.messages[-1] == ChatMessage(role="assistant", content="*Seraphina smiles*", prefill=True)
    assert [m.role for m in prompt.messages[1:]] == ["system", "system", "assistant"]  # example, instructions
    assert prompt.context_fit.keep_last == 2


def test_without_any_user_message_a_new_reply_keeps_the_whole_history_droppable() -> None:
    prompt = assistant_prompt("Be helpful.", [reply("a"), reply("b")])

    assert prompt.messages[1:] == [reply("a"), reply("b")]
    assert prompt.context_fit.keep_last == 0


def test_only_the_continued_reply_is_a_prefill() -> None:
    history = [user("q"), reply("a"), reply("b")]

    continued = assistant_prompt("Be helpful.", history, continuing=True)
    new = assistant_prompt("Be helpful.", history)

    assert [m.prefill for m in continued.messages] == [False, False, False, True]
    assert [m.content for m in continued.messages] == ["Be helpful.", "q", "a", "b"]
    assert not any(m.prefill for m in new.messages)
    assert assistant_prompt("Be helpful.", [reply("solo")], continuing=True).messages[-1].prefill
    greetings = assistant_prompt("Be helpful.", [reply("a"), reply("b")], continuing=True)
    assert greetings.context_fit.keep_last == 1 and greetings.messages[-1].prefill  # only the reply pinned
