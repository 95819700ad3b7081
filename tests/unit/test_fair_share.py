"""The slot-sharing policy (runtimes/fair_share.py): who holds an engine's slots."""

from collections import Counter

from runtimes.fair_share import Claim, Share, slot_holders

A, B, C = Share("cb_a"), Share("cb_b"), Share("cb_c")
BATCH = Share("batch:1", batch=True)


def claims(*entries: tuple[str, Share, bool]) -> list[tuple[str, Claim]]:
    """(name, share, running) in arrival order."""
    return [(name, Claim(share, running, order)) for order, (name, share, running) in enumerate(entries)]


def running(prefix: str, share: Share, count: int) -> list[tuple[str, Share, bool]]:
    return [(f"{prefix}{i}", share, True) for i in range(count)]


def test_a_lone_key_holds_every_slot() -> None:
    entries = claims(*[(f"a{i}", A, False) for i in range(10)])

    assert slot_holders(entries, 8) == [f"a{i}" for i in range(8)]


def test_another_keys_sequence_takes_the_latest_of_a_key_that_holds_every_slot() -> None:
    entries = claims(*running("a", A, 8), ("b0", B, False))

    held = slot_holders(entries, 8)

    assert "b0" in held and "a7" not in held
    assert sorted(held) == sorted([f"a{i}" for i in range(7)] + ["b0"])


def test_keys_split_the_slots_evenly_and_keep_them() -> None:
    entries = claims(*running("a", A, 6), *running("b", B, 2), ("c0", C, False), ("c1", C, False))

    shares = Counter(name[0] for name in slot_holders(entries, 8))

    assert shares == {"a": 4, "b": 2, "c": 2}  # b, below its share, keeps what it has


def test_a_waiting_sequence_of_a_key_at_its_share_does_not_displace_its_running_ones() -> None:
    entries = claims(*running("a", A, 4), *running("b", B, 4), ("a4", A, False))

    assert "a4" not in slot_holders(entries, 8)


def test_batch_items_yield_every_slot_to_chats() -> None:
    entries = claims(*running("x", BATCH, 8), *[(f"b{i}", B, False) for i in range(3)])

    held = slot_holders(entries, 8)

    assert {"b0", "b1", "b2"} <= set(held)
    assert held[:3] == ["b0", "b1", "b2"]  # chats are chosen first
    assert sorted(name for name in held if name.startswith("x")) == [f"x{i}" for i in range(5)]


def test_a_freed_slot_goes_back_to_the_preempted_sequence_before_later_ones() -> None:
    entries = claims(*running("a", A, 7), ("a7", A, False), ("a8", A, False))

    assert "a7" in slot_holders(entries, 8) and "a8" not in slot_holders(entries, 8)


def test_within_a_key_its_running_sequences_keep_their_slots_before_an_earlier_waiting_one() -> None:
    # A paused sequence (arrived first) waits while its own key's later ones run: no churn in a key.
    entries = claims(("0-paused", A, False), *running("r", A, 8))

    assert "0-paused" not in slot_holders(entries, 8)


def test_keys_at_equal_shares_keep_their_running_sequences() -> None:
    # C arrived first but holds nothing running; at equal shares the running ones stay put.
    entries = claims(("c0", C, False), ("a0", A, True), ("b0", B, True))

    assert slot_holders(entries, 2) == ["a0", "b0"]
