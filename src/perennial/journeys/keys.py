"""Deterministic identities: run ids, idempotency keys, and the hash buckets of splits.

Everything a crash could make us do twice is named by a key derived from what it
is, not from when it was done (rule 3 of the design): the run of a trigger
occurrence, the effect of a step visit. A/B splits and holdouts hash the
customer with the journey (and the step), so the same customer lands in the same
arm on every re-entry and on every worker, with no state to look up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from perennial.journeys.document import SplitVariant

__all__ = ["bucket", "effect_key", "in_holdout", "run_id", "split_variant"]

_SEPARATOR = "\x1f"


def _digest(*parts: object) -> str:
    return hashlib.sha256(_SEPARATOR.join(str(part) for part in parts).encode()).hexdigest()


def run_id(journey: str, customer_id: str, occurrence: str) -> str:
    """The run of one trigger occurrence for one customer (32 hex characters)."""
    return _digest("run", journey, customer_id, occurrence)[:32]


def effect_key(
    journey: str, version: int, customer_id: str, occurrence: str, step: str, visit: int
) -> str:
    """The idempotency key of one step's effect: (journey, version, customer, occurrence,
    step, and which visit of the step when a loop passes it again)."""
    return _digest("effect", journey, version, customer_id, occurrence, step, visit)


def bucket(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by ``parts``."""
    return int(_digest("bucket", *parts)[:16], 16) / 2**64


def in_holdout(journey: str, customer_id: str, percent: float) -> bool:
    """Is the customer in the journey's holdout? The same answer on every entry."""
    return percent > 0 and bucket("holdout", journey, customer_id) * 100 < percent


def split_variant(
    journey: str, step: str, customer_id: str, variants: Sequence[SplitVariant]
) -> SplitVariant:
    """The customer's arm of a split, in proportion to the weights, sticky by hash."""
    point = bucket("split", journey, step, customer_id) * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]
