"""Turns of stored conversations: what the model is sent and what is stored as the job is queued.

Each function reads what it needs (refusing with 404/409 before anything is written) and returns a
Turn: the model, the prompt from the card and the history, the conversation's id (chosen here for a
new one), and the write that `_stream_chat` makes while the job is queued. Plain blocking code: the
routes run it in a thread.
"""

from collections.abc import Callable
from dataclasses import dataclass

from bson import ObjectId

from api.http.auth import Caller
from api.http.errors import ApiError
from api.turns.chat_messages import character_dialogue
from mongo.characters import Character, card_data, conversation_character, find_character
from mongo.conversations import (
    Conversation,
    Message,
    add_user_message,
    choose_swipe,
    conversation_messages,
    start_conversation,
    user_conversation,
)
from prompts.assembly import DEFAULT_USER_NAME, Prompt, assistant_prompt, card_greetings, character_prompt
from schemas.chat import LumimaidRequest
from schemas.jobs import ChatMessage, ReplyTarget
from settings import Settings

# The model that plays characters (the original's `/Lumimaid_stream`).
CHARACTER_MODEL = "lumimaid"


@dataclass
class Turn:
    model: str
    prompt: Prompt
    conversation_id: str
    store_turn: Callable[[str], None]  # job id -> None: writes the user's turn
    reply_to: ReplyTarget | None = None


def owned_conversation(owner: str | None, conversation_id: str) -> Conversation:
    """The owner's conversation (anyone's for an admin: None); another user's is not found."""
    conversation = user_conversation(owner, conversation_id)
    if conversation is None:
        raise ApiError(404, "not_found", f"conversation {conversation_id!r} not found")
    return conversation


def existing_character(character_id: str, owner: str | None) -> Character:
    """A character the user may chat with: their own or a public one (any, for an admin: None)."""
    character = find_character(character_id, owner)
    if character is None:
        raise ApiError(404, "not_found", f"character {character_id!r} not found")
    return character


def open_conversation(
    user_id: str,
    character: Character,
    greeting_index: int,
    user_name: str,
    conversation_id: ObjectId | None = None,
) -> Conversation:
    """A conversation with a stored character, opening with the chosen greeting (all kept as swipes)."""
    greetings = card_greetings(card_data(character), user_name)
    if greeting_index >= len(greetings):
        raise ApiError(
            422,
            "validation_error",
            f"greeting_index: {character.name!r} has {len(greetings)} greetings (0 is first_mes)",
        )
    return start_conversation(
        user_id,
        CHARACTER_MODEL,
        character.name,
        greetings[greeting_index],
        character_id=character.id,
        user_name=user_name,
        greetings=greetings,
        conversation_id=conversation_id,
    )


def _history(messages: list[Message]) -> list[ChatMessage]:
    return [ChatMessage(role=message.role, content=message.content) for message in messages]


def conversation_card(conversation: Conversation, owner: str | None) -> Character:
    """The card the conversation was opened with, while its user may still see it: 409 once its
    owner deleted it or made it private (an admin, `owner` None, sees every card)."""
    character = conversation_character(conversation)
    if character is None:
        raise ApiError(409, "character_deleted", "the character of this conversation was deleted")
    if owner is not None and character.owner != conversation.user_id and character.visibility != "public":
        raise ApiError(
            409, "character_private", "the character of this conversation was made private by its owner"
        )
    return character


def _prompt(
    conversation: Conversation,
    owner: str | None,
    history: list[ChatMessage],
    settings: Settings,
    continuing: bool,
    assistant_system: str | None = None,
) -> Prompt:
    """`assistant_system` replaces the assistant's system prompt (a grounded turn brings passages)."""
    if conversation.character_id is None and conversation.character_name is None:
        return assistant_prompt(assistant_system or settings.assistant_system_prompt, history, continuing)
    character = conversation_card(conversation, owner)
    return character_prompt(card_data(character), history, conversation.user_name, continuing)


def _checked_model(conversation: Conversation, model: str | None) -> Conversation:
    if model is not None and conversation.model != model:
        raise ApiError(
            409, "conflict", f"conversation {str(conversation.id)!r} is with model {conversation.model!r}"
        )
    return conversation


def next_turn(
    owner: str | None,
    conversation_id: str,
    text: str,
    settings: Settings,
    model: str | None = None,
    assistant_system: str | None = None,
) -> Turn:
    """The user says `text` in a conversation: the whole stored history goes to the model."""
    conversation = _checked_model(owned_conversation(owner, conversation_id), model)
    history = [*_history(conversation_messages(conversation_id)), ChatMessage(role="user", content=text)]

    def store_turn(job_id: str) -> None:
        add_user_message(conversation.id, text, job_id)

    prompt = _prompt(conversation, owner, history, settings, False, assistant_system)
    return Turn(conversation.model, prompt, conversation_id, store_turn)


def first_turn(caller: Caller, character_id: str, text: str, settings: Settings) -> Turn:
    """A new conversation of the caller's with a stored character, and their first message in it."""
    character = existing_character(character_id, caller.owner_filter)
    prompt = character_dialogue(card_data(character), [ChatMessage(role="user", content=text)])

    conversation_id = ObjectId()

    def store_turn(job_id: str) -> None:
        open_conversation(caller.user_id, character, 0, DEFAULT_USER_NAME, conversation_id)
        add_user_message(conversation_id, text, job_id)

    return Turn(CHARACTER_MODEL, prompt, str(conversation_id), store_turn)


def lumimaid_turn(caller: Caller, body: LumimaidRequest, settings: Settings) -> Turn:
    """`/Lumimaid_stream` naming a conversation (which wins) or a stored character."""
    if body.conversation_id:
        return next_turn(
            caller.owner_filter, body.conversation_id, body.input_data, settings, CHARACTER_MODEL
        )
    return first_turn(caller, str(body.character_id), body.input_data, settings)


def _last_reply(conversation_id: str) -> tuple[list[Message], Message]:
    messages = conversation_messages(conversation_id)
    if not messages or messages[-1].role != "assistant":
        raise ApiError(409, "conflict", "the conversation does not end with a reply")
    return messages, messages[-1]


def regenerate_turn(owner: str | None, conversation_id: str, settings: Settings) -> Turn:
    """Another reply in place of the last one, which is kept as a swipe."""
    conversation = owned_conversation(owner, conversation_id)
    messages, reply = _last_reply(conversation_id)
    if not any(message.role == "user" for message in messages):
        raise ApiError(
            409,
            "conflict",
            "the greeting is not a generated reply: open a conversation with another greeting",
        )
    prompt = _prompt(conversation, owner, _history(messages[:-1]), settings, False)
    target = ReplyTarget(message_id=str(reply.id), mode="swipe")
    return Turn(conversation.model, prompt, conversation_id, lambda _: None, target)


def chosen_swipe(owner: str | None, conversation_id: str, swipe_id: int) -> Message:
    """The last reply with alternative `swipe_id` made current, as SillyTavern keeps the one shown."""
    owned_conversation(owner, conversation_id)
    _, reply = _last_reply(conversation_id)
    count = len(reply.swipes) or 1
    if swipe_id >= count:
        raise ApiError(
            400,
            "invalid_parameter",
            f"the last reply has {count} alternative(s): swipe_id is 0 to {count - 1}",
            fields=["swipe_id"],
        )
    return choose_swipe(reply, swipe_id)


def continue_turn(owner: str | None, conversation_id: str, settings: Settings) -> Turn:
    """More of the last reply (one cut short by max_tokens, or a stop): the model goes on from its end."""
    conversation = owned_conversation(owner, conversation_id)
    messages, reply = _last_reply(conversation_id)
    prompt = _prompt(conversation, owner, _history(messages), settings, True)
    target = ReplyTarget(message_id=str(reply.id), mode="continue")
    return Turn(conversation.model, prompt, conversation_id, lambda _: None, target)
