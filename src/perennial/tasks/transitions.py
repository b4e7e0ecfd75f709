"""Moving a task: claim (an agent takes it), assign (a manager routes it), cancel.

Each change is a compare-and-set on the status and holder the caller read, so two agents
claiming one task at once get one success and one clear conflict, never two holders;
every change is audited in the caller's transaction. Closing with an outcome is
:mod:`perennial.tasks.outcomes`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from perennial.access.audit import AuditEntry, record
from perennial.access.tables import SERVICE_TASKS
from perennial.access.users import find_user
from perennial.tasks.actors import TaskActor
from perennial.tasks.errors import TaskAccessError, TaskConflictError, TaskInputError
from perennial.tasks.records import Task, TaskStatus, get_task
from perennial.tasks.teams import WORKER_ROLES

__all__ = [
    "NOT_A_PERSON",
    "assign_task",
    "cancel_task",
    "check_active",
    "claim_task",
    "compare_and_set",
    "visible_task",
]

NOT_A_PERSON = (
    "an API key acts for no person and cannot hold a task: sign in as the agent, "
    "or have a manager assign the task"
)


def visible_task(connection: sa.Connection, actor: TaskActor, task_id: str) -> Task:
    """The task, if ``actor`` may see it (else :class:`TaskAccessError`)."""
    task = get_task(connection, task_id)
    actor.check_sees(task)
    return task


def claim_task(connection: sa.Connection, actor: TaskActor, task_id: str, *, now: datetime) -> Task:
    """The actor takes the task and starts it (``in_progress``). An agent may claim an
    unassigned task of their team or their own; a manager may take over any active task."""
    task = visible_task(connection, actor, task_id)
    if actor.user_id is None:
        raise TaskAccessError(NOT_A_PERSON)
    check_active(task, "claimed")
    if not actor.may_work(task):
        raise TaskConflictError(
            f"task {task_id} is held by {task.assignee_name or task.assignee}; "
            "ask a manager to reassign it"
        )
    compare_and_set(connection, task, assignee=actor.user_id, status=TaskStatus.IN_PROGRESS.value)
    _audit(connection, actor, "task.claimed", task, now, {"from": task.assignee})
    return get_task(connection, task_id)


def assign_task(
    connection: sa.Connection,
    actor: TaskActor,
    task_id: str,
    username: str | None,
    *,
    now: datetime,
) -> Task:
    """A manager gives the task to ``username`` (``None``: back to the team's queue); it is
    ``open`` again until the new holder claims it."""
    if not actor.manager:
        raise TaskAccessError("only operators and admins assign tasks")
    task = get_task(connection, task_id)
    check_active(task, "assigned")
    user_id = None if username is None else _worker(connection, username)
    compare_and_set(connection, task, assignee=user_id, status=TaskStatus.OPEN.value)
    _audit(connection, actor, "task.assigned", task, now, {"from": task.assignee, "to": user_id})
    return get_task(connection, task_id)


def cancel_task(
    connection: sa.Connection, actor: TaskActor, task_id: str, *, now: datetime
) -> Task:
    """A manager withdraws an active task (no outcome, no event)."""
    if not actor.manager:
        raise TaskAccessError("only operators and admins cancel tasks")
    task = get_task(connection, task_id)
    check_active(task, "cancelled")
    compare_and_set(
        connection, task, status=TaskStatus.CANCELLED.value, closed_at=now.astimezone(UTC)
    )
    _audit(connection, actor, "task.cancelled", task, now, {})
    return get_task(connection, task_id)


def check_active(task: Task, change: str) -> None:
    """Refuse a change to a closed or cancelled task (their state is final)."""
    if not task.active:
        raise TaskConflictError(
            f"task {task.task_id} is {task.status.value} and cannot be {change}"
        )


def compare_and_set(connection: sa.Connection, task: Task, **values: Any) -> None:
    """Write ``values`` if the task's status and holder are still what ``task`` says."""
    columns = SERVICE_TASKS.c
    holder = (
        columns.assignee.is_(None) if task.assignee is None else columns.assignee == task.assignee
    )
    changed = connection.execute(
        SERVICE_TASKS.update()
        .where(columns.task_id == task.task_id, columns.status == task.status.value, holder)
        .values(**values)
    )
    if changed.rowcount != 1:
        raise TaskConflictError(
            f"task {task.task_id} changed while this change was made; read it again"
        )


def _worker(connection: sa.Connection, username: str) -> str:
    user = find_user(connection, username)
    if user is None:
        raise TaskInputError(f"no user named {username!r}", "assignee")
    if user.disabled or not user.roles & WORKER_ROLES:
        raise TaskInputError(
            f"user {username!r} cannot hold tasks (disabled, or no agent role)", "assignee"
        )
    return user.user_id


def _audit(
    connection: sa.Connection,
    actor: TaskActor,
    action: str,
    task: Task,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    record(
        connection,
        AuditEntry(
            actor=actor.subject,
            action=action,
            subject_type="task",
            subject_id=task.task_id,
            detail={"customer_id": task.customer_id, **detail},
            at=now,
        ),
    )
