"""Turn a chat request into the messages and sampling the model gets (the template is applied by the worker)."""

from schemas.chat import GenerationParams, LlamaRequest, LumimaidRequest
from schemas.jobs import ChatMessage, SamplingParams
from settings import Settings


def character_system_prompt(name: str, context: str) -> str:
    prompt = f"You are {name}. Stay in character as {name} and reply to the user in role."
    return f"{prompt}\n\n{context}" if context else prompt


def character_dialogue(name: str, context: str, greeting: str, turns: list[ChatMessage]) -> list[ChatMessage]:
    """The character's system prompt, its greeting (the first assistant turn), then the dialogue."""
    messages = [ChatMessage(role="system", content=character_system_prompt(name, context))]
    if greeting:
        messages.append(ChatMessage(role="assistant", content=greeting))
    return messages + turns


def character_messages(body: LumimaidRequest) -> list[ChatMessage]:
    turn = ChatMessage(role="user", content=body.input_data)
    return character_dialogue(body.character_name, body.context, body.greeting, [turn])


def assistant_messages(body: LlamaRequest, system_prompt: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=system_prompt),
        ChatMessage(role="user", content=body.input_data),
    ]


def sampling_params(params: GenerationParams, settings: Settings) -> SamplingParams:
    return SamplingParams(
        max_tokens=params.max_tokens or settings.default_max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        seed=params.seed,
    )
