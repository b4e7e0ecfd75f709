"""Creating a task: by a journey's ``task`` step, an operator or a rule (the API), assigned
round-robin in the same transaction.

A journey passes the id derived from its effect key, so the task and the run's move are
one write: a crash rolls both back and the redone step makes the same task once. Ids a
caller chooses make a rule's retry safe: the second create is refused as a conflict, not
made twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from perennial.access.audit import AuditEntry, record
from perennial.access.tables import SERVICE_TASKS
from perennial.tasks.assignment import next_assignee
from perennial.tasks.errors import TaskConflictError, TaskInputError
from perennial.tasks.records import (
    PRIORITIES,
    RESERVED_TASK_IDS,
    TASK_ID_PATTERN,
    TITLE_MAX_LENGTH,
    Task,
    TaskStatus,
    get_task,
)

__all__ = ["NewTask", "create_task"]

_TASK_ID = re.compile(TASK_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class NewTask:
    customer_id: str
    title: str
    team: str | None
    priority: str = "normal"
    due_at: datetime | None = None
    """The SLA: when the task must be done (aware; stored in UTC)."""
    source: str | None = None
    task_id: str | None = None
    """``None``: a new random id."""


def create_task(
    connection: sa.Connection, new: NewTask, *, now: datetime, actor: str | None = None
) -> Task:
    """Store ``new`` as an open task held by the team's next member (or by nobody yet).

    ``actor`` given: the creation is audited (a person or a program made it; a journey's
    tasks are in its run log instead).
    """
    task_id = _checked(new)
    if connection.execute(
        sa.select(SERVICE_TASKS.c.task_id).where(SERVICE_TASKS.c.task_id == task_id)
    ).first():
        raise TaskConflictError(f"a task with id {task_id!r} exists already")
    assignee = next_assignee(connection, new.team)
    connection.execute(
        SERVICE_TASKS.insert().values(
            task_id=task_id,
            customer_id=new.customer_id,
            assignee=assignee,
            status=TaskStatus.OPEN.value,
            title=new.title,
            created_at=now.astimezone(UTC),
            due_at=None if new.due_at is None else new.due_at.astimezone(UTC),
            team=new.team,
            priority=new.priority,
            source=new.source,
        )
    )
    if actor is not None:
        detail = {"customer_id": new.customer_id, "team": new.team, "assignee": assignee}
        record(
            connection,
            AuditEntry(
                actor=actor,
                action="task.created",
                subject_type="task",
                subject_id=task_id,
                detail=detail,
                at=now,
            ),
        )
    return get_task(connection, task_id)


def _checked(new: NewTask) -> str:
    """The task's id once every value is acceptable."""
    if not new.customer_id or len(new.customer_id) > 256:
        raise TaskInputError("a customer id has 1 to 256 characters", "customer_id")
    if not new.title.strip() or len(new.title) > TITLE_MAX_LENGTH:
        raise TaskInputError(f"a title has 1 to {TITLE_MAX_LENGTH} characters", "title")
    if new.priority not in PRIORITIES:
        raise TaskInputError(
            f"unknown priority {new.priority!r}; priorities are {', '.join(PRIORITIES)}",
            "priority",
        )
    if new.due_at is not None and new.due_at.tzinfo is None:
        raise TaskInputError("the due time needs a UTC offset", "due_at")
    if new.task_id is None:
        return uuid.uuid4().hex
    if not _TASK_ID.fullmatch(new.task_id) or new.task_id in RESERVED_TASK_IDS:
        raise TaskInputError(
            f"{new.task_id!r} cannot be a task id: up to 32 letters, digits, _ and -, "
            f"not one of {', '.join(sorted(RESERVED_TASK_IDS))}",
            "task_id",
        )
    return new.task_id
