"""Turn a chat request into the messages and sampling the model gets (the template is applied by the worker),
and into the chat job itself: every route makes its job with `chat_job`.

Every character dialogue (the original route's inline character, a stored card, a batch item, a
`character:<name>` model on /v1) is assembled by prompts/assembly.py, so all of them see the same
card layout and can be trimmed to the context window the same way.
"""

import uuid
from typing import Any

from prompts.assembly import DEFAULT_USER_NAME, Prompt, card_greetings, character_prompt
from schemas.cards import CardData
from schemas.chat import GenerationParams, LlamaRequest, LumimaidRequest
from schemas.jobs import ChatJob, ChatMessage, SamplingParams
from settings import Settings


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


def generation_sampling(params: GenerationParams) -> dict[str, Any]:
    """The sampling knobs of a chat request, as `chat_job` takes them."""
    return params.model_dump(include={"max_tokens", "temperature", "top_p", "seed"})


def chat_job(
    model: str,
    messages: list[ChatMessage],
    settings: Settings,
    *,
    max_tokens: int | None,
    stop: list[str] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    sampling: dict[str, Any] | None = None,
    **fields: Any,
) -> ChatJob:
    """A chat job with a fresh id; sampling left unset (None) takes the server's defaults. `sampling`:
    further SamplingParams fields (penalties, logit bias, logprobs, grammar)."""
    given = {"temperature": temperature, "top_p": top_p, "seed": seed}
    params = SamplingParams(
        max_tokens=max_tokens or settings.default_max_tokens,
        stop=stop or [],
        **{name: value for name, value in given.items() if value is not None},
        **(sampling or {}),
    )
    return ChatJob(job_id=uuid.uuid4().hex, model=model, messages=messages, sampling=params, **fields)
