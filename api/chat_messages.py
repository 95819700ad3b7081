"""Turn a chat request into the messages the model sees (the template is applied by the worker)."""

from schemas.chat import LlamaRequest, LumimaidRequest
from schemas.jobs import ChatMessage


def character_system_prompt(name: str, context: str) -> str:
    prompt = f"You are {name}. Stay in character as {name} and reply to the user in role."
    return f"{prompt}\n\n{context}" if context else prompt


def character_messages(body: LumimaidRequest) -> list[ChatMessage]:
    messages = [
        ChatMessage(role="system", content=character_system_prompt(body.character_name, body.context))
    ]
    if body.greeting:
        messages.append(ChatMessage(role="assistant", content=body.greeting))
    messages.append(ChatMessage(role="user", content=body.input_data))
    return messages


def assistant_messages(body: LlamaRequest, system_prompt: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=system_prompt),
        ChatMessage(role="user", content=body.input_data),
    ]
