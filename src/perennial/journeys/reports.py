"""What a journey did: per-step counts, runs, sends and suppressions, a customer's timeline.

Counts come from the step log and the outbox, so they agree with what happened
(not with what the definition says now): a step of an older version still shows
the customers who passed through it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from perennial.journeys.tables import JOURNEY_LOG, JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.store.operational import utc

__all__ = [
    "RunRow",
    "SendRow",
    "StepCounts",
    "customer_timeline",
    "run_totals",
    "runs_page",
    "sends_page",
    "step_counts",
]


@dataclass
class StepCounts:
    entered: int = 0
    waiting: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    converted: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRow:
    run_id: str
    customer_id: str
    version: int
    status: str
    step: str | None
    variant: str | None
    entered_at: datetime
    updated_at: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class SendRow:
    effect_key: str
    customer_id: str
    step: str
    channel: str
    status: str
    reason: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    done_at: datetime | None


def step_counts(connection: sa.Connection, journey: str) -> dict[str, StepCounts]:
    counts: defaultdict[str, StepCounts] = defaultdict(StepCounts)
    log = JOURNEY_LOG.c
    entries = connection.execute(
        sa.select(log.step, sa.func.count())
        .where(log.journey == journey, log.what.in_(("entered", "entered_step")))
        .group_by(log.step)
    )
    for step, count in entries:
        if step is not None:
            counts[step].entered += int(count)
    runs = JOURNEY_RUNS.c
    for step, status, count in connection.execute(
        sa.select(runs.step, runs.status, sa.func.count())
        .where(runs.journey == journey, runs.status.in_(("waiting", "converted", "failed")))
        .group_by(runs.step, runs.status)
    ):
        if step is None:
            continue
        if status == "waiting":
            counts[step].waiting += int(count)
        elif status == "converted":
            counts[step].converted += int(count)
        else:
            counts[step].failed += int(count)
    outbox = JOURNEY_OUTBOX.c
    for step, status, reason, count in connection.execute(
        sa.select(outbox.step, outbox.status, outbox.reason, sa.func.count())
        .where(outbox.journey == journey, outbox.status.in_(("sent", "suppressed")))
        .group_by(outbox.step, outbox.status, outbox.reason)
    ):
        if status == "sent":
            counts[step].sent += int(count)
        else:
            counts[step].suppressed += int(count)
            key = str(reason or "unknown")
            counts[step].suppressed_by[key] = counts[step].suppressed_by.get(key, 0) + int(count)
    return dict(counts)


def run_totals(connection: sa.Connection) -> dict[str, dict[str, int]]:
    """Runs by status, for every journey (the list page)."""
    totals: defaultdict[str, dict[str, int]] = defaultdict(dict)
    runs = JOURNEY_RUNS.c
    for journey, status, count in connection.execute(
        sa.select(runs.journey, runs.status, sa.func.count()).group_by(runs.journey, runs.status)
    ):
        totals[journey][status] = int(count)
    return dict(totals)


def runs_page(
    connection: sa.Connection,
    journey: str,
    *,
    status: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[RunRow]:
    runs = JOURNEY_RUNS.c
    query = sa.select(JOURNEY_RUNS).where(runs.journey == journey)
    if status is not None:
        query = query.where(runs.status == status)
    if after is not None:
        query = query.where(runs.run_id > after)
    rows = connection.execute(query.order_by(runs.run_id).limit(limit))
    return [
        RunRow(
            row.run_id,
            row.customer_id,
            row.version,
            row.status,
            row.step,
            row.variant,
            utc(row.entered_at),
            utc(row.updated_at),
            None if row.due_at is None else utc(row.due_at),
        )
        for row in rows
    ]


def sends_page(
    connection: sa.Connection,
    journey: str,
    *,
    status: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[SendRow]:
    outbox = JOURNEY_OUTBOX.c
    query = sa.select(JOURNEY_OUTBOX).where(outbox.journey == journey)
    if status is not None:
        query = query.where(outbox.status == status)
    if after is not None:
        query = query.where(outbox.effect_key > after)
    rows = connection.execute(query.order_by(outbox.effect_key).limit(limit))
    return [
        SendRow(
            row.effect_key,
            row.customer_id,
            row.step,
            row.channel,
            row.status,
            row.reason,
            row.attempts,
            row.last_error,
            utc(row.created_at),
            None if row.done_at is None else utc(row.done_at),
        )
        for row in rows
    ]


def customer_timeline(
    connection: sa.Connection, customer_id: str, limit: int = 200
) -> list[dict[str, Any]]:
    """A customer's journey history, newest first: entries, messages (with their outcome),
    tasks, conversions (the customer 360 timeline shows these)."""
    log = JOURNEY_LOG.c
    shown = (
        "entered",
        "holdout",
        "sent",
        "suppressed",
        "deferred",
        "dead",
        "task",
        "coupon",
        "converted",
        "completed",
        "failed",
    )
    rows = connection.execute(
        sa.select(JOURNEY_LOG)
        .where(log.customer_id == customer_id, log.what.in_(shown))
        .order_by(log.seq.desc())
        .limit(limit)
    )
    timeline = []
    for row in rows:
        detail = row.detail
        if detail and detail.startswith("{"):
            try:
                detail = json.loads(detail).get("reason", detail)
            except ValueError:
                pass
        timeline.append(
            {
                "at": utc(row.at),
                "journey": row.journey,
                "version": row.version,
                "step": row.step,
                "what": row.what,
                "detail": detail,
            }
        )
    return timeline
