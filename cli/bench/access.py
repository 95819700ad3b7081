"""How a benchmark calls the stack it starts: with that stack's admin key (made for the run) and the
per-key quotas lifted, since the bench is one caller making many requests on purpose."""

import secrets

BENCH_KEY = secrets.token_urlsafe(24)
HEADERS = {"Authorization": f"Bearer {BENCH_KEY}"}
STACK_ENV = {
    "ADMIN_API_KEY": BENCH_KEY,
    "QUOTA_REQUESTS_PER_MINUTE": "0",
    "QUOTA_CONCURRENT_JOBS": "0",
    "QUOTA_QUEUED_TOKENS": "0",
    "QUOTA_BATCH_ITEMS_PER_DAY": "0",
}
