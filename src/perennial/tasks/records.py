"""A task as it is stored and read: statuses, outcomes, priorities, and overdue.

Status moves ``open`` -> ``in_progress`` -> ``closed``, or to ``cancelled`` from either
active state; ``closed`` and ``cancelled`` are final. A task is overdue when it is still
active and its due time has passed: at the due instant itself it is not yet overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from perennial.access.masking import OPEN_TASK_STATUSES
from perennial.access.tables import SERVICE_TASKS, USERS
from perennial.store.operational import utc
from perennial.tasks.errors import UnknownTaskError

__all__ = [
    "ACTIVE_STATUSES",
    "NOTES_MAX_LENGTH",
    "NOTES_REQUIRED",
    "PRIORITIES",
    "RESERVED_TASK_IDS",
    "TASK_ID_PATTERN",
    "TEAM_PATTERN",
    "TITLE_MAX_LENGTH",
    "Outcome",
    "Task",
    "TaskStatus",
    "get_task",
    "priority_rank",
    "task_from_row",
    "task_select",
]


class TaskStatus(StrEnum):
    OPEN = "open"
    """Waiting: in an agent's queue (assigned) or the team's (not yet)."""
    IN_PROGRESS = "in_progress"
    """An agent claimed it and is working on it."""
    CLOSED = "closed"
    """Done, with an outcome."""
    CANCELLED = "cancelled"
    """Withdrawn by a manager: no outcome, no event."""


ACTIVE_STATUSES = tuple(TaskStatus(status) for status in OPEN_TASK_STATUSES)
"""Not done yet: the statuses that let the holder see the customer's phone unmasked."""


class Outcome(StrEnum):
    """How a call-back ended (the event's ``outcome`` property)."""

    WON_BACK = "won_back"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    WRONG_NUMBER = "wrong_number"


NOTES_REQUIRED = frozenset({Outcome.DECLINED})
"""Outcomes that need notes: why the customer declined is what the business learns from."""
NOTES_MAX_LENGTH = 2000
TITLE_MAX_LENGTH = 500
PRIORITIES = ("urgent", "high", "normal", "low")
"""Highest first: a queue orders tasks due at the same time by this."""
TEAM_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,99}$"
"""Team names that can have members: lower case letters, digits, ``_`` and ``-``."""
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$"
"""Ids a caller may choose (journeys use 32 hex digits of the effect's key)."""
RESERVED_TASK_IDS = frozenset({"teams", "sla", "breaches"})
"""Names of the API's other task paths (``/v1/tasks/sla``), never task ids."""


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    customer_id: str
    title: str
    team: str | None
    priority: str | None
    status: TaskStatus
    assignee: str | None
    """The holder's user id; ``None``: waiting in the team's queue."""
    assignee_name: str | None
    """The holder's username."""
    created_at: datetime
    due_at: datetime | None
    source: str | None
    """``journey:<name>``, ``api:<caller>``, ``cli``: what created it."""
    outcome: str | None
    notes: str | None
    closed_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def overdue(self, now: datetime) -> bool:
        """Active and past its due time (not at it: due 10:00 is on time at 10:00)."""
        return self.active and self.due_at is not None and self.due_at < now

    @property
    def journey(self) -> str | None:
        """The journey that created the task, if one did."""
        if self.source is not None and self.source.startswith("journey:"):
            return self.source.removeprefix("journey:")
        return None


def priority_rank(priority: str | None) -> int:
    """0 for urgent ... 3 for low; an unknown or missing priority counts as normal."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else PRIORITIES.index("normal")


def task_select() -> sa.Select[Any]:
    """Every task column and the holder's username (the base of every task read)."""
    return sa.select(SERVICE_TASKS, USERS.c.username.label("assignee_name")).select_from(
        SERVICE_TASKS.outerjoin(USERS, USERS.c.user_id == SERVICE_TASKS.c.assignee)
    )


def task_from_row(row: sa.Row[Any]) -> Task:
    return Task(
        task_id=row.task_id,
        customer_id=row.customer_id,
        title=row.title,
        team=row.team,
        priority=row.priority,
        status=TaskStatus(row.status),
        assignee=row.assignee,
        assignee_name=row.assignee_name,
        created_at=utc(row.created_at),
        due_at=None if row.due_at is None else utc(row.due_at),
        source=row.source,
        outcome=row.outcome,
        notes=row.notes,
        closed_at=None if row.closed_at is None else utc(row.closed_at),
    )


def get_task(connection: sa.Connection, task_id: str) -> Task:
    """The task, or :class:`UnknownTaskError`."""
    row = connection.execute(task_select().where(SERVICE_TASKS.c.task_id == task_id)).first()
    if row is None:
        raise UnknownTaskError(task_id)
    return task_from_row(row)
