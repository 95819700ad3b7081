"""The original's MongoDB routes, behind the admin key."""

import httpx

from tests.support.clients import RACHEL
from tests.support.sse import post_stream


def test_mongo_db_lists_the_service_database(api: httpx.Client, db, admin_headers) -> None:
    post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 2})  # make sure something is stored

    response = api.get("/mongo/db", headers=admin_headers)

    assert response.status_code == 200
    assert db.name in response.json()["Database"]


def test_mongo_collections_lists_the_collections(api: httpx.Client, db, admin_headers) -> None:
    post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 2})

    response = api.get("/mongo/collections", params={"db_name": db.name}, headers=admin_headers)

    assert response.status_code == 200
    assert {"characters", "conversations", "messages"} <= set(response.json()["Collections"])


def test_unknown_database_is_404(api: httpx.Client, admin_headers) -> None:
    response = api.get("/mongo/collections", params={"db_name": "no_such_db"}, headers=admin_headers)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "no_such_db" in response.json()["error"]["message"]


def test_mongo_routes_need_the_admin_key(api: httpx.Client, stack) -> None:
    missing = httpx.get(f"{stack.api_url}/mongo/db")
    unknown = api.get("/mongo/db", headers={"X-API-Key": "not-a-key"})
    users = api.get("/mongo/db")  # the tests' client calls as a plain user

    assert (missing.status_code, unknown.status_code) == (401, 401)
    assert missing.json()["error"]["code"] == "unauthorized"
    assert users.status_code == 403
    assert users.json()["error"]["code"] == "forbidden"
