"""Conversations with a character card through the whole stack, with the real model: the stored history
is the prompt, replies are regenerated as swipes and continued, and each user sees only their own."""

import json
import uuid

import httpx
import pytest
from bson import ObjectId
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from prompts.assembly import character_prompt
from runtimes.llama_cpp import LlamaCppRuntime
from schemas.cards import CardData
from schemas.jobs import ChatMessage
from tests.support.cards import LOREBOOK_ENTRY_CONTENT, SERAPHINA_V2, named, sillytavern_png
from tests.support.clients import RACHEL, bearer, new_user_key
from tests.support.sse import StreamEvent, iter_events, post_stream, streamed_text

GREEDY = {"temperature": 0, "max_tokens": 8}


@pytest.fixture
def user(stack: EmbeddedStack) -> dict[str, str]:
    """The headers of a fresh user (the `api` client's own key is shared by many tests)."""
    return bearer(new_user_key(stack.api_url))


@pytest.fixture
def seraphina(api: httpx.Client) -> dict:
    card = named(SERAPHINA_V2, f"Seraphina {uuid.uuid4().hex[:8]}")
    response = api.post(
        "/characters/import",
        params={"visibility": "public"},  # the users of these tests chat with it
        content=sillytavern_png(card),
        headers={"Content-Type": "image/png"},
    )
    assert response.status_code == 201
    return response.json()


def open_conversation(api: httpx.Client, character: dict, user: dict, **options) -> dict:
    response = api.post("/conversations", json={"character_id": character["id"], **options}, headers=user)
    assert response.status_code == 201, response.text
    return response.json()


def chat(api: httpx.Client, path: str, body: dict, user: dict) -> list[StreamEvent]:
    response, events = post_stream(api, path, body, headers=user)
    assert response.status_code == 200, response.read()
    assert events[-1].event == "done", events[-1]
    return events


def say(api: httpx.Client, conversation: dict, text: str, user: dict, **params) -> list[StreamEvent]:
    body = {"input_data": text, **GREEDY, **params}
    return chat(api, f"/conversations/{conversation['id']}/messages", body, user)


def stored(api: httpx.Client, conversation: dict, user: dict) -> list[dict]:
    return api.get(f"/conversations/{conversation['id']}", headers=user).json()["messages"]


def expected_prompt_tokens(
    api: httpx.Client, gemma: LlamaCppRuntime, character: dict, history: list[dict]
) -> int:
    """The prompt assembled from the stored card and history, counted by the model's own tokenizer."""
    card = CardData.model_validate(
        api.get(f"/characters/{character['id']}/export?format=json").json()["data"]
    )
    messages = [ChatMessage(role=message["role"], content=message["content"]) for message in history]
    return len(gemma.prompt_tokens(character_prompt(card, messages, "Alex").messages))


def test_three_turns_each_prompt_carries_the_whole_history(
    api: httpx.Client, gemma: LlamaCppRuntime, seraphina: dict, user: dict
) -> None:
    conversation = open_conversation(api, seraphina, user, user_name="Alex")
    prompt_tokens, replies = [], []

    for text in ("Where am I?", "Is this the glade?", "Thank you for healing me."):
        events = say(api, conversation, text, user)
        history = stored(api, conversation, user)
        prompt_tokens.append(events[-1].data["usage"]["prompt_tokens"])
        replies.append(streamed_text(events))
        assert prompt_tokens[-1] == expected_prompt_tokens(api, gemma, seraphina, history[:-1])

    assert [(m["role"], m["content"]) for m in history] == [
        ("assistant", "*" + seraphina["name"] + " leans over you.* You're awake, Alex. Rest now."),
        ("user", "Where am I?"),
        ("assistant", replies[0]),
        ("user", "Is this the glade?"),
        ("assistant", replies[1]),
        ("user", "Thank you for healing me."),
        ("assistant", replies[2]),
    ]
    assert prompt_tokens[0] < prompt_tokens[1] < prompt_tokens[2]


def test_the_lorebook_entry_reaches_the_prompt_when_its_key_is_said(
    api: httpx.Client, gemma: LlamaCppRuntime, seraphina: dict, user: dict
) -> None:
    plain = open_conversation(api, seraphina, user, user_name="Alex")
    keyed = open_conversation(api, seraphina, user, user_name="Alex")

    without = say(api, plain, "Tell me about the woods.", user)[-1].data["usage"]["prompt_tokens"]
    with_key = say(api, keyed, "Tell me about the glade.", user)[-1].data["usage"]["prompt_tokens"]

    lore_tokens = len(gemma.text_tokens(LOREBOOK_ENTRY_CONTENT))
    assert with_key - without >= lore_tokens


def test_regenerate_keeps_both_replies_as_swipes(api: httpx.Client, seraphina: dict, user: dict) -> None:
    conversation = open_conversation(api, seraphina, user)
    first = say(api, conversation, "Who are you?", user, temperature=1.0, seed=1)
    count = len(stored(api, conversation, user))

    second = chat(
        api,
        f"/conversations/{conversation['id']}/regenerate",
        {"temperature": 1.0, "seed": 2, "max_tokens": 8},
        user,
    )
    reply = stored(api, conversation, user)[-1]

    assert second[-1].data["message_id"] == first[-1].data["message_id"] == reply["id"]
    assert reply["swipes"] == [streamed_text(first), streamed_text(second)]
    assert (reply["swipe_id"], reply["content"]) == (1, streamed_text(second))
    assert len(stored(api, conversation, user)) == count
    # The same prompt as the first time: the replaced reply is not in it.
    assert second[-1].data["usage"]["prompt_tokens"] == first[-1].data["usage"]["prompt_tokens"]


def test_the_chosen_alternative_is_the_one_the_next_turn_and_continue_build_on(
    api: httpx.Client, gemma: LlamaCppRuntime, seraphina: dict, user: dict
) -> None:
    conversation = open_conversation(api, seraphina, user, user_name="Alex")
    say(api, conversation, "Who are you?", user, max_tokens=3)
    for max_tokens in (6, 9):  # alternatives of different lengths, so the prompts tell them apart
        chat(
            api, f"/conversations/{conversation['id']}/regenerate", {**GREEDY, "max_tokens": max_tokens}, user
        )
    alternatives = stored(api, conversation, user)[-1]["swipes"]
    assert len(alternatives) == 3 and stored(api, conversation, user)[-1]["swipe_id"] == 2

    chosen = api.put(f"/conversations/{conversation['id']}/swipe", json={"swipe_id": 0}, headers=user)

    assert chosen.status_code == 200, chosen.text
    assert (chosen.json()["swipe_id"], chosen.json()["content"]) == (0, alternatives[0])
    history = stored(api, conversation, user)
    assert history[-1]["content"] == alternatives[0]
    events = say(api, conversation, "Tell me more.", user)
    with_first = [*history, {"role": "user", "content": "Tell me more."}]
    with_last = [*history[:-1], {**history[-1], "content": alternatives[2]}, with_first[-1]]
    expected = expected_prompt_tokens(api, gemma, seraphina, with_first)
    assert expected != expected_prompt_tokens(api, gemma, seraphina, with_last)
    assert events[-1].data["usage"]["prompt_tokens"] == expected
    assert stored(api, conversation, user)[-3]["content"] == alternatives[0]


def test_choosing_an_alternative_that_is_not_there_is_refused(
    api: httpx.Client, seraphina: dict, user: dict, another_user: httpx.Client
) -> None:
    conversation = open_conversation(api, seraphina, user)
    say(api, conversation, "Hi", user)
    path = f"/conversations/{conversation['id']}/swipe"

    refused = api.put(path, json={"swipe_id": 1}, headers=user)
    assert refused.status_code == 400 and "0 to 0" in refused.json()["error"]["message"]
    assert another_user.put(path, json={"swipe_id": 0}).status_code == 404
    assert api.put(path, json={"swipe_id": -1}, headers=user).status_code == 422
    assert stored(api, conversation, user)[-1]["swipe_id"] == 0


def test_the_conversation_list_previews_each_last_message(
    api: httpx.Client, seraphina: dict, user: dict
) -> None:
    quiet = open_conversation(api, seraphina, user, user_name="Alex")
    talked = open_conversation(api, seraphina, user, user_name="Alex")
    reply = streamed_text(say(api, talked, "Where am I?", user))

    listed = api.get("/conversations", params={"character_id": seraphina["id"]}, headers=user).json()["items"]

    previews = {conversation["id"]: conversation["preview"] for conversation in listed}
    greeting = stored(api, quiet, user)[0]["content"]
    assert previews[quiet["id"]] == " ".join(greeting.split())[:80]
    assert previews[talked["id"]] == " ".join(reply.split())[:80]
    assert [conversation["id"] for conversation in listed][:2] == [talked["id"], quiet["id"]]


def test_continue_appends_to_a_cut_off_reply(api: httpx.Client, seraphina: dict, user: dict) -> None:
    conversation = open_conversation(api, seraphina, user)
    cut = say(
        api,
        conversation,
        "Tell me a long story about the forest.",
        user,
        max_tokens=4,
        temperature=1.0,
        seed=3,
    )

    more = chat(api, f"/conversations/{conversation['id']}/continue", {"max_tokens": 4, "seed": 4}, user)
    reply = stored(api, conversation, user)[-1]

    assert cut[-1].data["finish_reason"] == "length"
    assert more[-1].data["message_id"] == cut[-1].data["message_id"]
    assert reply["content"] == streamed_text(cut) + streamed_text(more)
    assert more[-1].data["usage"]["prompt_tokens"] > cut[-1].data["usage"]["prompt_tokens"]


def test_a_conversation_opens_with_the_chosen_alternate_greeting(
    api: httpx.Client, seraphina: dict, user: dict
) -> None:
    conversation = open_conversation(api, seraphina, user, greeting_index=1, user_name="Alex")
    name = seraphina["name"]

    greeting = conversation["messages"][0]
    out_of_range = api.post(
        "/conversations", json={"character_id": seraphina["id"], "greeting_index": 2}, headers=user
    )

    assert greeting["content"] == f"*{name} hums while tending the fire.* Oh, Alex, good morning."
    assert greeting["swipes"] == [
        f"*{name} leans over you.* You're awake, Alex. Rest now.",
        greeting["content"],
    ]
    assert greeting["swipe_id"] == 1
    assert out_of_range.status_code == 422
    assert "greeting_index" in out_of_range.json()["error"]["message"]


def test_the_greeting_cannot_be_regenerated(api: httpx.Client, seraphina: dict, user: dict) -> None:
    conversation = open_conversation(api, seraphina, user)

    response = api.post(f"/conversations/{conversation['id']}/regenerate", headers=user)

    assert response.status_code == 409
    assert "greeting" in response.json()["error"]["message"]


def test_conversations_belong_to_their_user(
    api: httpx.Client, stack: EmbeddedStack, db, seraphina: dict, user: dict
) -> None:
    conversation = open_conversation(api, seraphina, user)
    stranger = bearer(new_user_key(stack.api_url))
    messages_before = db.messages.count_documents({})

    listed = api.get("/conversations", params={"character_id": seraphina["id"]}, headers=user).json()
    strangers_list = api.get("/conversations", headers=stranger).json()
    read = api.get(f"/conversations/{conversation['id']}", headers=stranger)
    said = api.post(
        f"/conversations/{conversation['id']}/messages", json={"input_data": "hi"}, headers=stranger
    )
    deleted = api.delete(f"/conversations/{conversation['id']}", headers=stranger)

    assert [item["id"] for item in listed["items"]] == [conversation["id"]]
    assert listed["items"][0]["messages"] is None
    assert strangers_list["total"] == 0
    assert (read.status_code, said.status_code, deleted.status_code) == (404, 404, 404)
    assert db.messages.count_documents({}) == messages_before


def test_a_deleted_conversation_goes_with_its_messages(
    api: httpx.Client, db, seraphina: dict, user: dict
) -> None:
    conversation = open_conversation(api, seraphina, user)

    response = api.delete(f"/conversations/{conversation['id']}", headers=user)

    assert response.status_code == 204
    assert api.get(f"/conversations/{conversation['id']}", headers=user).status_code == 404
    assert db.messages.count_documents({"conversation_id": ObjectId(conversation["id"])}) == 0


@pytest.mark.parametrize("action", ["messages", "regenerate"])
def test_a_conversation_deleted_while_its_reply_streams_gets_no_orphan_reply(
    api: httpx.Client, db, seraphina: dict, user: dict, action: str
) -> None:
    conversation = open_conversation(api, seraphina, user)
    if action == "regenerate":
        say(api, conversation, "Hello?", user)
    body = {"input_data": "Tell me a long story.", "temperature": 0, "max_tokens": 48}
    path = f"/conversations/{conversation['id']}/{action}"

    with connect_sse(api, "POST", path, json=body, headers=user) as source:
        events = iter_events(source)
        first = next(events)
        deleted = api.delete(f"/conversations/{conversation['id']}", headers=user)
        last = [(sse.event, json.loads(sse.data)) for sse in events][-1]

    assert (first.event, deleted.status_code) == ("token", 204)
    assert last[0] == "done" and last[1]["finish_reason"] == "length" and last[1]["message_id"] is None
    assert db.messages.count_documents({"conversation_id": ObjectId(conversation["id"])}) == 0


def test_lumimaid_stream_continues_a_conversation_by_id(api: httpx.Client, user: dict) -> None:
    first, events = post_stream(api, "/Lumimaid_stream", {**RACHEL, **GREEDY}, headers=user)
    conversation_id = first.headers["X-Conversation-Id"]

    second = chat(
        api,
        "/Lumimaid_stream",
        {"input_data": "And then?", "conversation_id": conversation_id, **GREEDY},
        user,
    )
    history = api.get(f"/conversations/{conversation_id}", headers=user).json()["messages"]

    assert [m["role"] for m in history] == ["assistant", "user", "assistant", "user", "assistant"]
    assert history[3]["content"] == "And then?"
    assert second[-1].data["usage"]["prompt_tokens"] > events[-1].data["usage"]["prompt_tokens"]


def test_lumimaid_stream_can_name_a_stored_character(api: httpx.Client, seraphina: dict, user: dict) -> None:
    response, events = post_stream(
        api,
        "/Lumimaid_stream",
        {"input_data": "Hello?", "character_id": seraphina["id"], **GREEDY},
        headers=user,
    )
    conversation = api.get(f"/conversations/{response.headers['X-Conversation-Id']}", headers=user).json()

    assert events[-1].event == "done"
    assert conversation["character_id"] == seraphina["id"]
    assert conversation["messages"][0]["content"].endswith("You're awake, User. Rest now.")
    assert [m["role"] for m in conversation["messages"]] == ["assistant", "user", "assistant"]


def test_llama_stream_continues_a_conversation_by_id(api: httpx.Client, user: dict) -> None:
    first, _ = post_stream(api, "/Llama_stream", {"input_data": "What is a fern?", **GREEDY}, headers=user)
    conversation_id = first.headers["X-Conversation-Id"]

    chat(
        api, "/Llama_stream", {"input_data": "And moss?", "conversation_id": conversation_id, **GREEDY}, user
    )
    history = api.get(f"/conversations/{conversation_id}", headers=user).json()["messages"]

    assert [(m["role"], m["content"]) for m in history][::2] == [
        ("user", "What is a fern?"),
        ("user", "And moss?"),
    ]
    assert len(history) == 4


def test_another_users_conversation_id_on_the_chat_routes_is_404(api: httpx.Client, user: dict) -> None:
    first, _ = post_stream(api, "/Llama_stream", {"input_data": "Hi", **GREEDY}, headers=user)

    response = api.post(
        "/Llama_stream",
        json={"input_data": "Hi again", "conversation_id": first.headers["X-Conversation-Id"]},
    )

    assert response.status_code == 404
