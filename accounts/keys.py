"""API keys: random, shown once, stored only as a hash, told apart in logs by a prefix.

A key reads `cb_<id>_<secret>`: the id (8 characters) is not secret and is the key's prefix in logs
and listings; the secret carries 192 random bits. A key of that strength needs no slow password
hash: SHA-256 of the whole key is what is stored and looked up, so a stolen database gives no key.
A key set by the operator (ADMIN_API_KEY) may have any form; its prefix is then derived from its hash.
"""

import hashlib
import re
import secrets

KEY_FORMAT = re.compile(r"^cb_([A-Za-z0-9]{8})_[A-Za-z0-9_-]{32}$")
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_key() -> str:
    key_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(8))
    return f"cb_{key_id}_{secrets.token_urlsafe(24)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """What names the key in logs and listings; never enough of it to use."""
    match = KEY_FORMAT.match(key)
    if match:
        return f"cb_{match.group(1)}"
    return f"env_{key_hash(key)[:8]}"
