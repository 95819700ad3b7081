"""Bad input is answered 422 naming the field, and nothing is stored or enqueued."""

import httpx
import pytest

from tests.conftest import RACHEL


def stored_counts(db) -> tuple[int, int, int]:
    return (
        db.messages.count_documents({}),
        db.conversations.count_documents({}),
        db.characters.count_documents({}),
    )


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
    api: httpx.Client, db, broker, path: str, body: dict, field: str
) -> None:
    before = stored_counts(db)

    response = api.post(path, json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert field in error["message"]
    assert stored_counts(db) == before
    assert broker.llen("cpu") == 0


def test_malformed_json_is_422_with_the_error_shape(api: httpx.Client) -> None:
    response = api.post("/Llama_stream", content=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_unknown_route_is_404_with_the_error_shape(api: httpx.Client) -> None:
    response = api.get("/no-such-route")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}
