"""API keys as made and told apart (accounts/keys.py): no service needed."""

from accounts.keys import KEY_FORMAT, key_hash, key_prefix, new_key


def test_a_new_key_has_its_prefix_and_enough_randomness() -> None:
    keys = {new_key() for _ in range(200)}

    assert len(keys) == 200
    assert all(KEY_FORMAT.match(key) for key in keys)
    assert all(key.startswith(key_prefix(key) + "_") for key in keys)
    assert len({key_prefix(key) for key in keys}) == 200  # the ids differ too: a prefix names one key


def test_the_stored_hash_reveals_nothing_of_the_key() -> None:
    key = new_key()

    assert key_hash(key) == key_hash(key) and len(key_hash(key)) == 64
    assert key_hash(key) != key_hash(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert key[len(key_prefix(key)) + 1 :] not in key_hash(key)  # the secret part


def test_an_operators_key_of_any_form_gets_a_prefix_from_its_hash() -> None:
    prefix = key_prefix("my own admin secret")

    assert prefix == "env_" + key_hash("my own admin secret")[:8]
    assert "secret" not in prefix
