"""Reading queues: the tasks an actor may see, filtered, in working order, a page at a time.

Working order is due time first (so overdue tasks, whose due time has passed, lead every
queue of active tasks), then priority (urgent first), then id; tasks without a due time
come last. Pages continue after the key of the last task served (a cursor), so a task
created meanwhile neither shifts nor repeats a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from perennial.access.tables import SERVICE_TASKS
from perennial.store.operational import UtcTimestamp
from perennial.tasks.actors import TaskActor
from perennial.tasks.records import (
    ACTIVE_STATUSES,
    PRIORITIES,
    Task,
    priority_rank,
    task_from_row,
    task_select,
)

__all__ = ["NO_DUE_TIME", "QueueKey", "StatusFilter", "TaskQuery", "list_tasks", "queue_key"]

StatusFilter = Literal["active", "open", "in_progress", "closed", "cancelled", "all"]
QueueKey = tuple[datetime, int, str]
"""(due time, priority rank, task id): where a task stands in working order."""
NO_DUE_TIME = datetime(9999, 12, 31, tzinfo=UTC)
"""The due time a task without one sorts as (last)."""

_TS = UtcTimestamp()


@dataclass(frozen=True, slots=True)
class TaskQuery:
    status: StatusFilter = "active"
    """``active``: open and in progress (the queue); ``all``: every status."""
    team: str | None = None
    mine: bool = False
    """Only the tasks the actor holds."""
    overdue: bool | None = None
    """``True``: only overdue ones; ``False``: none of them; ``None``: either."""
    customer_id: str | None = None


def queue_key(task: Task) -> QueueKey:
    return (task.due_at or NO_DUE_TIME, priority_rank(task.priority), task.task_id)


def list_tasks(
    connection: sa.Connection,
    actor: TaskActor,
    query: TaskQuery,
    *,
    now: datetime,
    after: QueueKey | None = None,
    limit: int = 50,
) -> list[Task]:
    """Up to ``limit`` tasks ``actor`` may see that match ``query``, in working order,
    after ``after``."""
    scope = _scope(actor, query)
    if scope is None:
        return []
    columns = SERVICE_TASKS.c
    due = sa.func.coalesce(columns.due_at, sa.literal(NO_DUE_TIME, _TS))
    rank = sa.case(
        {priority: rank for rank, priority in enumerate(PRIORITIES)},
        value=columns.priority,
        else_=priority_rank(None),
    )
    statement = task_select().where(*scope, *_filters(query, now.astimezone(UTC)))
    if after is not None:
        at, after_rank, task_id = after
        statement = statement.where(
            sa.tuple_(due, rank, columns.task_id)
            > sa.tuple_(
                sa.literal(at.astimezone(UTC), _TS),
                sa.literal(after_rank),
                sa.literal(task_id),
            )
        )
    rows = connection.execute(statement.order_by(due, rank, columns.task_id).limit(limit))
    return [task_from_row(row) for row in rows]


def _scope(actor: TaskActor, query: TaskQuery) -> list[Any] | None:
    """The conditions limiting what ``actor`` sees (``None``: nothing at all)."""
    columns = SERVICE_TASKS.c
    if query.mine:
        return None if actor.user_id is None else [columns.assignee == actor.user_id]
    if actor.manager:
        return []
    if actor.user_id is None:
        return None
    return [sa.or_(columns.assignee == actor.user_id, columns.team.in_(sorted(actor.teams)))]


def _filters(query: TaskQuery, now: datetime) -> list[Any]:
    columns = SERVICE_TASKS.c
    active = columns.status.in_([status.value for status in ACTIVE_STATUSES])
    filters: list[Any] = []
    if query.status == "active":
        filters.append(active)
    elif query.status != "all":
        filters.append(columns.status == query.status)
    if query.team is not None:
        filters.append(columns.team == query.team)
    if query.customer_id is not None:
        filters.append(columns.customer_id == query.customer_id)
    overdue = sa.and_(active, columns.due_at.is_not(None), columns.due_at < now)
    if query.overdue is True:
        filters.append(overdue)
    elif query.overdue is False:
        filters.append(sa.not_(overdue))
    return filters
