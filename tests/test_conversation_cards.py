"""A conversation keeps the card it was opened with: another user's card of the same name never takes
its place, and a card its owner deletes or makes private ends the conversation with a clear 409."""

import uuid

import httpx
import pytest
from bson import ObjectId

from embedded.stack import EmbeddedStack
from mongo.characters import link_conversations_to_characters
from mongo.connection import connect_mongo
from prompts.assembly import character_prompt
from runtimes.llama_cpp import LlamaCppRuntime
from schemas.cards import CardData
from schemas.jobs import ChatMessage
from tests.support.clients import RACHEL, bearer, new_user_key
from tests.support.sse import StreamEvent, post_stream

GREEDY = {"temperature": 0, "max_tokens": 4}


@pytest.fixture
def alice(stack: EmbeddedStack) -> dict[str, str]:
    return bearer(new_user_key(stack.api_url))


@pytest.fixture
def bob(stack: EmbeddedStack) -> dict[str, str]:
    return bearer(new_user_key(stack.api_url))


def say(api: httpx.Client, conversation_id: str, user: dict) -> tuple[httpx.Response, list[StreamEvent]]:
    body = {"input_data": "And then?", **GREEDY}
    return post_stream(api, f"/conversations/{conversation_id}/messages", body, headers=user)


def history(api: httpx.Client, conversation_id: str, user: dict) -> list[ChatMessage]:
    messages = api.get(f"/conversations/{conversation_id}", headers=user).json()["messages"]
    return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]


def card_prompt_tokens(
    gemma: LlamaCppRuntime, api: httpx.Client, character_id: str, turns: list[ChatMessage], user: dict
) -> int:
    """The prompt that card and these turns make, counted by the model's own tokenizer."""
    exported = api.get(f"/characters/{character_id}/export?format=json", headers=user).json()
    prompt = character_prompt(CardData.model_validate(exported["data"]), turns, "User")
    return len(gemma.prompt_tokens(prompt.messages))


def refusal(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_another_users_card_of_the_same_name_never_takes_a_deleted_ones_place(
    api: httpx.Client, db, gemma: LlamaCppRuntime, alice: dict, bob: dict
) -> None:
    name = f"Rachel {uuid.uuid4().hex[:8]}"
    first, _ = post_stream(api, "/Lumimaid_stream", {**RACHEL, "character_name": name, **GREEDY}, alice)
    conversation_id = first.headers["X-Conversation-Id"]
    alices_card = api.get(f"/conversations/{conversation_id}", headers=alice).json()["character_id"]
    bobs_card = {"name": name, "system_prompt": "BOB-SYS", "description": "Bob's.", "visibility": "public"}
    assert api.post("/characters", json=bobs_card, headers=bob).status_code == 201

    turns = [*history(api, conversation_id, alice), ChatMessage(role="user", content="And then?")]
    expected = card_prompt_tokens(gemma, api, alices_card, turns, alice)
    _, while_both_exist = say(api, conversation_id, alice)
    assert api.delete(f"/characters/{alices_card}", headers=alice).status_code == 204
    messages_before = db.messages.count_documents({"conversation_id": ObjectId(conversation_id)})
    after_delete = [
        say(api, conversation_id, alice)[0],
        api.post(f"/conversations/{conversation_id}/regenerate", json=GREEDY, headers=alice),
        post_stream(api, "/Lumimaid_stream", {"input_data": "Hi", "conversation_id": conversation_id}, alice)[
            0
        ],
    ]

    assert while_both_exist[-1].data["usage"]["prompt_tokens"] == expected
    assert [refusal(response) for response in after_delete] == [(409, "character_deleted")] * 3
    assert db.messages.count_documents({"conversation_id": ObjectId(conversation_id)}) == messages_before


def test_a_card_made_private_ends_other_users_conversations_with_it(
    api: httpx.Client, db, alice: dict, bob: dict
) -> None:
    card = {"name": f"Bard {uuid.uuid4().hex[:8]}", "description": "Sings.", "visibility": "public"}
    created = api.post("/characters", json=card, headers=bob).json()
    opened = api.post("/conversations", json={"character_id": created["id"]}, headers=alice).json()
    bobs_own = api.post("/conversations", json={"character_id": created["id"]}, headers=bob).json()
    before, _ = say(api, opened["id"], alice)
    private = {**card, "system_prompt": "BOB-PRIVATE", "visibility": "private"}
    assert api.put(f"/characters/{created['id']}", json=private, headers=bob).status_code == 200
    messages_before = db.messages.count_documents({"conversation_id": ObjectId(opened["id"])})

    after, _ = say(api, opened["id"], alice)
    owners, owners_events = say(api, bobs_own["id"], bob)

    assert before.status_code == 200
    assert refusal(after) == (409, "character_private")
    assert db.messages.count_documents({"conversation_id": ObjectId(opened["id"])}) == messages_before
    assert owners.status_code == 200 and owners_events[-1].event == "done"


def test_a_conversation_that_named_its_character_only_is_linked_to_its_users_own(
    stack: EmbeddedStack, db
) -> None:
    """Conversations stored before they kept an id get their own user's character, not a namesake."""
    name = f"Rachel {uuid.uuid4().hex[:8]}"
    mine = db.characters.insert_one({"owner": "alice-id", "name": name, "visibility": "private"}).inserted_id
    db.characters.insert_one({"owner": "bob-id", "name": name, "visibility": "public"})
    orphan_name = f"Gone {uuid.uuid4().hex[:8]}"
    db.characters.insert_one({"owner": "bob-id", "name": orphan_name, "visibility": "public"})
    linked = db.conversations.insert_one({"user_id": "alice-id", "model": "m", "character_name": name})
    orphan = db.conversations.insert_one({"user_id": "alice-id", "model": "m", "character_name": orphan_name})
    connect_mongo(stack.mongo_uri, stack.config.extra_env["MONGO_DB"])

    link_conversations_to_characters()

    assert db.conversations.find_one({"_id": linked.inserted_id})["character_id"] == mine
    assert "character_id" not in db.conversations.find_one({"_id": orphan.inserted_id})
