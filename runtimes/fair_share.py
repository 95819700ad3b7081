"""Who holds an engine's slots when more sequences want one than it has: fair shares between keys.

The policy is max-min fairness in two tiers, as vLLM's scheduler orders by priority and then by
arrival: chats first, then batch items (a batch item always yields its slot to a chat); within a
tier, slots go round the keys one at a time, to the key holding the fewest so far, so a lone key gets
every slot and two keys split them evenly. Within a key, its running sequences keep their slots
before its waiting ones, and earlier arrivals before later ones, so a key over its share gives up
its latest sequence (the one with the least work to redo) and shares do not churn between steps.

Pure: the engines (runtimes/llama_cpp_engine.py) apply the plan, preempting what loses its slot.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Share:
    """Whom a sequence's slot counts against: its API key (a batch's items: the batch), and whether it
    is a batch item."""

    key: str
    batch: bool = False


@dataclass(frozen=True)
class Claim:
    """A sequence's claim on a slot: its share, whether it holds one now, and its arrival order."""

    share: Share
    running: bool
    order: int


T = TypeVar("T")


def slot_holders(claims: Iterable[tuple[T, Claim]], slots: int) -> list[T]:
    """Which of the claimants hold the `slots` slots under the policy, in the order they were chosen."""
    claims = list(claims)
    chosen: list[T] = []
    for batch in (False, True):
        by_key: dict[str, list[tuple[T, Claim]]] = {}
        tier = sorted(
            ((item, claim) for item, claim in claims if claim.share.batch == batch),
            key=lambda entry: (not entry[1].running, entry[1].order),
        )
        for item, claim in tier:
            by_key.setdefault(claim.share.key, []).append((item, claim))
        held = dict.fromkeys(by_key, 0)
        while len(chosen) < slots and by_key:
            key = min(by_key, key=lambda k: (held[k], _rank(by_key[k][0][1])))
            item, _ = by_key[key].pop(0)
            chosen.append(item)
            held[key] += 1
            if not by_key[key]:
                del by_key[key]
    return chosen


def _rank(claim: Claim) -> tuple[bool, int]:
    """Between keys holding as many slots: the one whose next sequence runs already, then the earlier."""
    return (not claim.running, claim.order)
