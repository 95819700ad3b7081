"""Calling the API as the tests' users: the keys the session's stacks are started with, a user's key
made through the admin routes, and the request every chat test starts from."""

import uuid

import httpx

ADMIN_KEY = "test-admin-key"
METRICS_TOKEN = "test-scrape-token"

# The original's example request.
RACHEL = {
    "input_data": "*I approach Rachel and talk to her.*",
    "character_name": "Rachel",
    "greeting": "*Rachel stands nervously at the lectern...*",
    "context": "Rachel is a devout Catholic girl of about 19 years old...",
    "image": "https://drive.google.com/thumbnail?id=12PqUS6bj4eAO_fLDaWQmoq94-771xfim",
    "access_level": True,
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed_client(api_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=api_url, timeout=120, headers=bearer(key))


def new_user_key(api_url: str, role: str = "user") -> str:
    """A new user (of that role) and a key for them, made through the admin routes."""
    name = f"{role}-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=api_url, headers=bearer(ADMIN_KEY), timeout=60) as client:
        client.post("/admin/users", json={"name": name, "role": role}).raise_for_status()
        created = client.post(f"/admin/users/{name}/keys", json={"label": "tests"})
        created.raise_for_status()
        return created.json()["key"]


# The session's stacks lift the per-key quotas: the tests share a key and burst on purpose. The quota
# tests (test_accounts.py) run an API process of their own with small ones.
NO_QUOTAS = {
    "QUOTA_REQUESTS_PER_MINUTE": "0",
    "QUOTA_CONCURRENT_JOBS": "0",
    "QUOTA_QUEUED_TOKENS": "0",
    "QUOTA_BATCH_ITEMS_PER_DAY": "0",
}
