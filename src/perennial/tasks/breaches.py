"""SLA breaches: tasks still open at their due time, each recorded once when first seen.

:func:`breach_alerts` is what the worker calls on its rounds: it records every task that
became overdue since the last call and returns those (the ones to alert about). The
record's primary key is the task, and the insert does nothing when the row exists, so
several workers checking at once on PostgreSQL record and return each breach once
between them. A task closed late before any check saw it overdue raises no alert (it is
done), but counts as breached in :func:`perennial.tasks.sla.team_sla`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perennial.access.tables import SERVICE_TASKS
from perennial.tasks.records import ACTIVE_STATUSES, Task, task_from_row, task_select
from perennial.tasks.tables import TASK_SLA_BREACHES

__all__ = ["BreachKey", "SlaBreach", "breach_alerts", "list_breaches"]

BreachKey = tuple[datetime, str]
"""(recorded at, task id): where a breach stands in the newest-first list."""

_CHECK_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SlaBreach:
    task: Task
    """The task as it is now (it may have been closed since)."""
    recorded_at: datetime

    @property
    def key(self) -> BreachKey:
        return (self.recorded_at, self.task.task_id)


def breach_alerts(connection: sa.Connection, now: datetime) -> list[SlaBreach]:
    """Record the tasks that are overdue at ``now`` and were not recorded yet; return them,
    longest overdue first (at most 1,000 a call: the next call takes the rest)."""
    now = now.astimezone(UTC)
    columns = SERVICE_TASKS.c
    recorded = sa.select(TASK_SLA_BREACHES.c.task_id).where(
        TASK_SLA_BREACHES.c.task_id == columns.task_id
    )
    candidates = connection.execute(
        task_select()
        .where(
            columns.status.in_([status.value for status in ACTIVE_STATUSES]),
            columns.due_at < now,
            ~recorded.exists(),
        )
        .order_by(columns.due_at, columns.task_id)
        .limit(_CHECK_BATCH)
    ).all()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    breaches = []
    for row in candidates:
        task = task_from_row(row)
        inserted = connection.execute(
            insert(TASK_SLA_BREACHES)
            .values(task_id=task.task_id, team=task.team, due_at=task.due_at, recorded_at=now)
            .on_conflict_do_nothing()
        )
        if inserted.rowcount == 1:
            breaches.append(SlaBreach(task, now))
    return breaches


def list_breaches(
    connection: sa.Connection,
    *,
    team: str | None = None,
    after: BreachKey | None = None,
    limit: int = 50,
) -> list[SlaBreach]:
    """Recorded breaches, newest first, after the key ``after`` (for paging)."""
    breaches = TASK_SLA_BREACHES.c
    statement: sa.Select[Any] = task_select().add_columns(breaches.recorded_at.label("recorded"))
    statement = statement.join(TASK_SLA_BREACHES, breaches.task_id == SERVICE_TASKS.c.task_id)
    if team is not None:
        statement = statement.where(breaches.team == team)
    if after is not None:
        at, task_id = after
        statement = statement.where(
            sa.tuple_(breaches.recorded_at, breaches.task_id)
            < sa.tuple_(
                sa.literal(at.astimezone(UTC), breaches.recorded_at.type), sa.literal(task_id)
            )
        )
    rows = connection.execute(
        statement.order_by(breaches.recorded_at.desc(), breaches.task_id.desc()).limit(limit)
    ).all()
    return [SlaBreach(task_from_row(row), _utc(row.recorded)) for row in rows]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
