"""Bad input is answered 422 naming the field, and nothing is stored or enqueued."""

import uuid

import httpx
import pytest

from jobs.keys import job_log_key
from tests.support.clients import RACHEL


def stored_for(db, user: str, character: str) -> dict[str, int]:
    """What this test's own user and character have in the database: nothing, it should stay."""
    conversations = [doc["_id"] for doc in db.conversations.find({"user_id": user}, {"_id": 1})]
    return {
        "conversations": len(conversations),
        "messages": db.messages.count_documents({"conversation_id": {"$in": conversations}}),
        "characters": db.characters.count_documents({"name": character}),
    }


def job_logs(broker) -> set[bytes]:
    """Every job's log key: the API opens one for each job it enqueues, before enqueueing it."""
    return set(broker.scan_iter(match=job_log_key("*")))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/Lumimaid_stream", {**RACHEL, "input_data": ""}, "input_data"),
        ("/Lumimaid_stream", {**RACHEL, "input_data": "x" * 501}, "input_data"),
        ("/Lumimaid_stream", {**RACHEL, "image": "https://example.com/cat.png"}, "image"),
        ("/Lumimaid_stream", {k: v for k, v in RACHEL.items() if k != "character_name"}, "character_name"),
        ("/Lumimaid_stream", {**RACHEL, "max_tokens": 0}, "max_tokens"),
        ("/Llama_stream", {"input_data": ""}, "input_data"),
        ("/Llama_stream", {"input_data": "x" * 501}, "input_data"),
        ("/Llama_stream", {}, "input_data"),
        ("/Llama_stream", {"input_data": "hi", "google_access": "perhaps"}, "google_access"),
    ],
)
def test_invalid_request_is_422_naming_the_field_and_stores_nothing(
    another_user: httpx.Client, db, broker, path: str, body: dict, field: str
) -> None:
    user, character = another_user.get("/me").json()["user_id"], f"Rachel {uuid.uuid4().hex}"
    if "character_name" in body:
        body = {**body, "character_name": character}
    logs_before = job_logs(broker)

    response = another_user.post(path, json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert field in error["message"]
    assert stored_for(db, user, character) == {"conversations": 0, "messages": 0, "characters": 0}
    assert job_logs(broker) <= logs_before  # no job was enqueued (earlier ones' logs may expire)


def test_malformed_json_is_422_with_the_error_shape(api: httpx.Client) -> None:
    response = api.post("/Llama_stream", content=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_unknown_route_is_404_with_the_error_shape(api: httpx.Client) -> None:
    response = api.get("/no-such-route")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}
