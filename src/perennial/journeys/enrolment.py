"""Entering customers into a journey: entry rules, holdout, one run per occurrence.

Enrolment takes a batch (the customers a segment change, an event or a list
brings) and decides each against the journey's entry rules with one read of the
customers' earlier runs. The journey's header row is locked for the transaction,
so two workers enrolling into the same journey take turns and cannot both let a
customer in. A repeated occurrence (the same segment change read twice after a
crash) finds its run already there: enrolment is idempotent.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from perennial.journeys.document import Journey
from perennial.journeys.keys import in_holdout, run_id
from perennial.journeys.tables import JOURNEY_LOG, JOURNEY_RUNS, JOURNEYS
from perennial.store.operational import utc

__all__ = [
    "ONGOING",
    "EnrolCounts",
    "EntryRequest",
    "LiveJourney",
    "enroll",
]

ONGOING = ("active", "waiting")
"""Run statuses of a customer still in the journey."""

_CHUNK = 500


@dataclass(frozen=True)
class LiveJourney:
    """A published version of a journey, as the runtime uses it."""

    name: str
    version: int
    document: Journey
    published_at: datetime | None = None
    """When this version went live: triggers ignore what happened before."""


@dataclass(frozen=True)
class EntryRequest:
    customer_id: str
    occurrence: str
    """What made this entry (``segment_change:812``, ``signal:93``, ``manual:list-7:C01``):
    the same occurrence never makes two runs."""
    at: datetime
    context: Mapping[str, Any] = field(default_factory=dict)
    start_at: datetime | None = None
    """When the run's first step is due (a date trigger's local time); None: at once."""


@dataclass
class EnrolCounts:
    entered: int = 0
    holdout: int = 0
    refused: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _PastRun:
    occurrence: str
    status: str
    entered_at: datetime


def enroll(
    connection: sa.Connection,
    live: LiveJourney,
    requests: Sequence[EntryRequest],
    now: datetime,
) -> EnrolCounts:
    """Let in those of ``requests`` the entry rules allow; returns what happened."""
    counts = EnrolCounts()
    status = connection.execute(
        sa.select(JOURNEYS.c.status).where(JOURNEYS.c.name == live.name).with_for_update()
    ).scalar()
    if status != "active":
        counts.refused[f"journey_{status or 'missing'}"] += len(requests)
        return counts
    unique = list({(r.customer_id, r.occurrence): r for r in requests}.values())
    past = _past_runs(connection, live.name, [r.customer_id for r in unique])
    limit = live.document.entry.limit
    total = _run_count(connection, live.name) if limit is not None else 0
    runs: list[dict[str, object]] = []
    logs: list[dict[str, object]] = []
    for request in unique:
        reason = _refusal(live.document, past[request.customer_id], request, now)
        if reason is None and limit is not None and total >= limit:
            reason = "enrolment_limit"
        if reason is not None:
            counts.refused[reason] += 1
            continue
        total += 1
        row = _new_run(live, request, now)
        past[request.customer_id].append(_PastRun(request.occurrence, str(row["status"]), now))
        runs.append(row)
        held_out = row["status"] == "holdout"
        counts.holdout += held_out
        counts.entered += not held_out
        logs.append(
            {
                "journey": live.name,
                "version": live.version,
                "run_id": row["run_id"],
                "customer_id": request.customer_id,
                "step": None if held_out else live.document.start,
                "what": "holdout" if held_out else "entered",
                "at": now,
                "detail": request.occurrence,
            }
        )
    if runs:
        connection.execute(JOURNEY_RUNS.insert(), runs)
        connection.execute(JOURNEY_LOG.insert(), logs)
    return counts


def _refusal(
    journey: Journey, past: Iterable[_PastRun], request: EntryRequest, now: datetime
) -> str | None:
    runs = list(past)
    if any(run.occurrence == request.occurrence for run in runs):
        return "same_occurrence"
    rules = journey.entry
    ongoing = sum(run.status in ONGOING for run in runs)
    if rules.re_entry == "every":
        return "max_concurrent" if ongoing >= rules.max_concurrent else None
    if ongoing:
        return "in_journey"
    if rules.re_entry == "never" and runs:
        return "entered_before"
    if rules.re_entry == "after_days" and runs:
        last = max(run.entered_at for run in runs)
        if now - last < timedelta(days=rules.re_entry_days or 0):
            return "entered_recently"
    return None


def _new_run(live: LiveJourney, request: EntryRequest, now: datetime) -> dict[str, object]:
    document = live.document
    held_out = in_holdout(live.name, request.customer_id, document.holdout_percent)
    return {
        "run_id": run_id(live.name, request.customer_id, request.occurrence),
        "journey": live.name,
        "version": live.version,
        "customer_id": request.customer_id,
        "occurrence": request.occurrence,
        "status": "holdout" if held_out else "active",
        "step": None if held_out else document.start,
        "variant": None,
        "context": json.dumps(dict(request.context), ensure_ascii=False, default=str),
        "entered_at": now,
        "updated_at": now,
        "due_at": None if held_out else max(now, request.start_at or now),
        "wait_event": None,
        "waiting_since": None,
        "claimed_by": None,
        "claimed_until": None,
    }


def _past_runs(
    connection: sa.Connection, journey: str, customers: Sequence[str]
) -> defaultdict[str, list[_PastRun]]:
    runs = JOURNEY_RUNS.c
    past: defaultdict[str, list[_PastRun]] = defaultdict(list)
    distinct = sorted(set(customers))
    for start in range(0, len(distinct), _CHUNK):
        rows = connection.execute(
            sa.select(runs.customer_id, runs.occurrence, runs.status, runs.entered_at).where(
                runs.journey == journey, runs.customer_id.in_(distinct[start : start + _CHUNK])
            )
        )
        for row in rows:
            past[row.customer_id].append(_PastRun(row.occurrence, row.status, utc(row.entered_at)))
    return past


def _run_count(connection: sa.Connection, journey: str) -> int:
    query = sa.select(sa.func.count()).select_from(JOURNEY_RUNS)
    return int(connection.execute(query.where(JOURNEY_RUNS.c.journey == journey)).scalar() or 0)
