"""Waiting for a job the way a client would: its stored reply, or its end in `GET /jobs/{id}`."""

import httpx

from tests.support.waiting import DEFAULT_TIMEOUT_S, wait_until


def wait_for_reply(db, job_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    return wait_until(
        lambda: db.messages.find_one({"job_id": job_id, "role": "assistant"}),
        what=f"the stored reply of job {job_id}",
        timeout_s=timeout_s,
    )


def job_status(api: httpx.Client, job_id: str) -> dict:
    return api.get(f"/jobs/{job_id}").json()


def wait_until_ended(api: httpx.Client, job_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    return wait_until(
        lambda: job_status(api, job_id),
        lambda job: job["state"] not in ("queued", "running"),
        what=f"job {job_id} to end",
        timeout_s=timeout_s,
    )
