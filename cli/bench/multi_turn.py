"""`chatbot bench compare`'s multi-turn round: conversations with characters whose card is ~1,000
tokens, growing turn by turn, one request at a time, so the time to first token shows what the
prefix cache saves. Per character: a conversation of several turns (its first turn prefills the
whole card), then a second conversation (its first turn finds the card resident).

Our stack is sent what a user sends (the card inline, then the conversation's id); llama-server
is sent the same dialogue rendered by our template, with `cache_prompt` (its default) on.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from api.turns.chat_messages import character_dialogue, inline_card
from cli.bench.measure import TurnTrace
from cli.bench.systems import InProcess, LlamaServer, Stack
from schemas.cards import CardData
from schemas.jobs import ChatMessage

NAMES = ["Rachel", "Mireille", "Ottilie"]
USER_LINES = [
    "Good evening. What brings you to the library so late?",
    "Tell me more about the letter you mentioned.",
    "And what will you do tomorrow?",
]
# Facts of the card's description, cycled (numbered) until it is long enough.
FACTS = [
    "{name} grew up in a small harbour town where the fog rolled in every evening and the lighthouse "
    "keeper taught her to read the weather from the colour of the sea.",
    "{name} works as an archivist in the old municipal library, cataloguing letters that nobody has "
    "opened for a century, and she keeps a notebook of the strangest sentences she finds.",
    "{name} speaks softly, chooses her words with care, and laughs at her own mistakes before anyone "
    "else can; she dislikes loud rooms but loves thunderstorms.",
    "{name} has a younger brother who sails cargo ships between distant ports and writes to her "
    "every month, always enclosing a pressed flower from wherever he last docked.",
    "{name} believes every object remembers the hands that held it, and she treats old books, chipped "
    "cups and rusted keys as if they could tell their stories to a patient listener.",
    "{name} is learning to play the cello in the evenings, badly, and apologises to the neighbours "
    "with loaves of rye bread she bakes on Sunday mornings.",
    "{name} once found a letter in the archive addressed to someone with her own name, dated eighty "
    "years before her birth, and she has never told anyone what it said.",
]
TURNS = len(USER_LINES)


def card_description(name: str, tokens: Callable[[str], int], target_tokens: int) -> str:
    """The character's description: numbered facts until it reaches `target_tokens` (by our tokenizer)."""
    lines: list[str] = []
    while tokens("\n".join(lines)) < target_tokens:
        number = len(lines)
        lines.append(f"{number + 1}. " + FACTS[number % len(FACTS)].format(name=name))
    return "\n".join(lines)


@dataclass
class Character:
    name: str
    description: str

    @property
    def greeting(self) -> str:
        return f"*{self.name} looks up from a stack of yellowed letters and smiles.* Oh! I did not hear you come in."

    def card(self) -> CardData:
        return inline_card(self.name, self.description, self.greeting)

    def inline_fields(self) -> dict:
        return {
            "character_name": self.name,
            "greeting": self.greeting,
            "context": self.description,
            "image": "https://drive.google.com/thumbnail?id=12PqUS6bj4eAO_fLDaWQmoq94-771xfim",
        }


async def timed(stream: AsyncIterator[str]) -> tuple[float, str]:
    """(time to the first non-empty piece, the whole reply)."""
    started = time.perf_counter()
    first = None
    pieces: list[str] = []
    async for piece in stream:
        if piece:
            first = first or time.perf_counter()
            pieces.append(piece)
    return (first or time.perf_counter()) - started, "".join(pieces)


# One conversation of a system: given the character, the turn's index and the user's line, time the
# reply and return (ttft, reply); it keeps whatever it needs (an id, the history) between its turns.
Conversation = Callable[[Character, int, str], Awaitable[tuple[float, str]]]


def stack_conversation(stack: Stack, max_tokens: int) -> Conversation:
    state: dict = {}

    async def turn(character: Character, index: int, line: str) -> tuple[float, str]:
        body = {"input_data": line, "max_tokens": max_tokens, "temperature": 0}
        if index == 0:
            body |= character.inline_fields()
        else:
            body["conversation_id"] = state["id"]
        headers: dict = {}
        result = await timed(stack.stream_body(body, headers))
        state.setdefault("id", headers.get("x-conversation-id"))
        return result

    return turn


def server_conversation(server: LlamaServer, renderer: InProcess) -> Conversation:
    history: list[ChatMessage] = []

    async def turn(character: Character, index: int, line: str) -> tuple[float, str]:
        history.append(ChatMessage(role="user", content=line))
        prompt = renderer.server_prompt(character_dialogue(character.card(), history).messages)
        ttft, reply = await timed(server.stream_prompt(prompt))
        history.append(ChatMessage(role="assistant", content=reply))
        return ttft, reply

    return turn


async def run_conversations(
    new_conversation: Callable[[], Conversation], characters: list[Character]
) -> list[TurnTrace]:
    traces: list[TurnTrace] = []
    for character in characters:
        conversation = new_conversation()
        for index, line in enumerate(USER_LINES):
            ttft, _ = await conversation(character, index, line)
            kind = "first turn, new card" if index == 0 else f"turn {index + 1}"
            traces.append(TurnTrace(kind, ttft))
        ttft, _ = await new_conversation()(character, 0, USER_LINES[0])
        traces.append(TurnTrace("first turn, resident card", ttft))
    return traces


def characters(renderer: InProcess, target_tokens: int) -> list[Character]:
    def count(text: str) -> int:
        return len(renderer.runtime.text_tokens(text))

    return [Character(name, card_description(name, count, target_tokens)) for name in NAMES]


def card_tokens(renderer: InProcess, character: Character) -> int:
    """The first turn's prompt in tokens: the card, the greeting and the user's line."""
    opening = [ChatMessage(role="user", content=USER_LINES[0])]
    return len(renderer.runtime.prompt_tokens(character_dialogue(character.card(), opening).messages))
