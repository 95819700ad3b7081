"""Waiting for a job the way a client would: its stored reply, or its end in `GET /jobs/{id}`."""

import time

import httpx


def wait_for_reply(db, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = db.messages.find_one({"job_id": job_id, "role": "assistant"})
        if reply:
            return reply
        time.sleep(0.05)
    raise AssertionError(f"the worker never stored the reply of job {job_id}")


def wait_until_ended(api: httpx.Client, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")
