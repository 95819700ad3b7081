"""Turn a chat request into the messages the model gets (the template is applied by the worker), and
into the chat job itself: every route makes its job with `chat_job` (its sampling: api/turns/sampling.py).

Every character dialogue (the original route's inline character, a stored card, a batch item, a
`character:<name>` model on /v1) is assembled by prompts/assembly.py, so all of them see the same
card layout and can be trimmed to the context window the same way.
"""

import uuid
from typing import Any

from prompts.assembly import DEFAULT_USER_NAME, Prompt, card_greetings, character_prompt
from schemas.cards import CardData
from schemas.chat import LlamaRequest, LumimaidRequest
from schemas.jobs import ChatJob, ChatMessage, SamplingParams


def inline_card(name: str, description: str, greeting: str) -> CardData:
    """A character given in the request (the original's `context` is its description)."""
    return CardData(name=name, description=description, first_mes=greeting)


def character_dialogue(card: CardData, turns: list[ChatMessage]) -> Prompt:
    """The character's greeting as the opening assistant turn, then the dialogue (ending with the user)."""
    greeting = card_greetings(card, DEFAULT_USER_NAME)[0]
    history = [ChatMessage(role="assistant", content=greeting)] if greeting else []
    return character_prompt(card, history + turns)


def character_messages(body: LumimaidRequest) -> Prompt:
    card = inline_card(body.character_name, body.context, body.greeting)
    return character_dialogue(card, [ChatMessage(role="user", content=body.input_data)])


def assistant_messages(body: LlamaRequest, system_prompt: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=system_prompt),
        ChatMessage(role="user", content=body.input_data),
    ]


def chat_job(model: str, messages: list[ChatMessage], *, sampling: SamplingParams, **fields: Any) -> ChatJob:
    """A chat job with a fresh id (its sampling made from the request by api/turns/sampling.py)."""
    return ChatJob(job_id=uuid.uuid4().hex, model=model, messages=messages, sampling=sampling, **fields)
