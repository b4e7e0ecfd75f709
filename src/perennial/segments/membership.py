"""Keep a segment's membership current and log every enter and exit.

A refresh evaluates the segment (for everyone, or for the customers an event
touched), compares with the stored members and, in one transaction, moves the
difference in or out and appends one ``enter``/``exit`` line per customer to the
change log that journeys consume. Nothing changes for customers whose membership
did not change, so refreshing twice logs nothing the second time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from perennial.segments.ast import Expression
from perennial.segments.evaluation import Evaluation
from perennial.segments.repository import (
    SavedSegment,
    apply_changes,
    current_members,
    current_members_among,
)

__all__ = ["RefreshResult", "refresh_many", "refresh_membership", "retire_membership"]


@dataclass(frozen=True)
class RefreshResult:
    name: str
    version: int
    members: int
    entered: int
    exited: int
    seconds: float
    trigger: str


def refresh_membership(
    evaluation: Evaluation,
    segment: SavedSegment,
    expression: Expression,
    *,
    trigger: str,
    customers: Sequence[str] | None = None,
) -> RefreshResult:
    """Bring ``segment``'s members in line with ``expression`` in ``evaluation``.

    With ``customers`` the evaluation must be restricted to them: only their
    membership is compared and changed.
    """
    started = time.perf_counter()
    members = set(evaluation.members(expression))
    with evaluation.operational.begin() as connection:
        current = _current_members(connection, [segment.name], customers)[segment.name]
        entered = sorted(members - current)
        exited = sorted(current - members)
        total = apply_changes(
            connection,
            name=segment.name,
            version=segment.version,
            entered=entered,
            exited=exited,
            at=evaluation.now,
            trigger=trigger,
        )
    return RefreshResult(
        segment.name,
        segment.version,
        total,
        len(entered),
        len(exited),
        time.perf_counter() - started,
        trigger,
    )


def retire_membership(evaluation: Evaluation, segment: SavedSegment) -> RefreshResult:
    """Every member exits (the segment was archived)."""
    started = time.perf_counter()
    with evaluation.operational.begin() as connection:
        exited = sorted(current_members(connection, segment.name))
        apply_changes(
            connection,
            name=segment.name,
            version=segment.version,
            entered=[],
            exited=exited,
            at=evaluation.now,
            trigger="archive",
        )
    return RefreshResult(
        segment.name, segment.version, 0, 0, len(exited), time.perf_counter() - started, "archive"
    )


def refresh_many(
    evaluation: Evaluation,
    segments: Sequence[SavedSegment],
    *,
    trigger: str,
    customers: Sequence[str] | None = None,
) -> list[RefreshResult]:
    """:func:`refresh_membership` for several segments, evaluated in one query and
    written in one transaction (the live path re-evaluates every affected segment at once)."""
    started = time.perf_counter()
    found = evaluation.members_of({s.name: evaluation.saved[s.name] for s in segments})
    results = []
    with evaluation.operational.begin() as connection:
        held = _current_members(connection, [s.name for s in segments], customers)
        for segment in segments:
            current = held[segment.name]
            members = found[segment.name]
            entered, exited = sorted(members - current), sorted(current - members)
            total = apply_changes(
                connection,
                name=segment.name,
                version=segment.version,
                entered=entered,
                exited=exited,
                at=evaluation.now,
                trigger=trigger,
            )
            results.append(
                RefreshResult(
                    segment.name, segment.version, total, len(entered), len(exited), 0.0, trigger
                )
            )
    seconds = time.perf_counter() - started
    return [dataclasses.replace(r, seconds=seconds) for r in results]


def _current_members(
    connection: sa.Connection, names: Sequence[str], customers: Sequence[str] | None
) -> dict[str, set[str]]:
    """Each segment's members now: all of them, or those among ``customers``."""
    if customers is None:
        return {name: set(current_members(connection, name)) for name in names}
    return current_members_among(connection, names, list(customers))
