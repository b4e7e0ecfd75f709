"""The SLA view per team: what is open, what is overdue, what was done, how often late.

Over the last ``days`` (7 by default) before ``now``: ``closed`` counts tasks closed in
the window; ``due`` counts tasks (not cancelled) whose due time fell in the window and
``breached`` those of them not closed by their due time (closed later, or still open), so
``breach_rate = breached / due``. ``open`` and ``overdue`` are the state at ``now``. The
numbers come from the tasks themselves, so they hold whether or not a worker was running
to record the breaches as they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from perennial.access.tables import SERVICE_TASKS
from perennial.tasks.records import ACTIVE_STATUSES, TaskStatus
from perennial.tasks.tables import TASK_TEAMS

__all__ = ["SLA_WINDOW_DAYS", "TeamSla", "team_sla"]

SLA_WINDOW_DAYS = 7


@dataclass(frozen=True, slots=True)
class TeamSla:
    team: str | None
    """``None``: tasks created without a team."""
    open: int
    overdue: int
    closed: int
    due: int
    breached: int

    @property
    def breach_rate(self) -> float | None:
        """Share of the window's due tasks not done in time; ``None`` when none fell due."""
        return self.breached / self.due if self.due else None


def team_sla(
    connection: sa.Connection, now: datetime, *, days: int = SLA_WINDOW_DAYS
) -> list[TeamSla]:
    """One row per team with tasks or members, by team name (tasks without a team last)."""
    now = now.astimezone(UTC)
    since = now - timedelta(days=days)
    columns = SERVICE_TASKS.c
    active = columns.status.in_([status.value for status in ACTIVE_STATUSES])
    due_in_window = sa.and_(
        columns.status != TaskStatus.CANCELLED.value,
        columns.due_at >= since,
        columns.due_at < now,
    )
    late = sa.or_(columns.closed_at.is_(None), columns.closed_at > columns.due_at)
    rows = connection.execute(
        sa.select(
            columns.team,
            _count(active),
            _count(sa.and_(active, columns.due_at < now)),
            _count(sa.and_(columns.status == TaskStatus.CLOSED.value, columns.closed_at >= since)),
            _count(due_in_window),
            _count(sa.and_(due_in_window, late)),
        ).group_by(columns.team)
    ).all()
    found = {row[0]: TeamSla(row[0], *(int(value or 0) for value in row[1:])) for row in rows}
    for team in connection.execute(sa.select(TASK_TEAMS.c.team)).scalars():
        found.setdefault(team, TeamSla(team, 0, 0, 0, 0, 0))
    return sorted(found.values(), key=lambda sla: (sla.team is None, sla.team or ""))


def _count(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))
