"""``/v1/tasks``: customer-service tasks: queues, one task, create, claim, assign, close, cancel.

Agents see the tasks they hold and their teams' tasks, and claim and close their own and
their teams' unassigned ones; operators (and admins) see and change every task, create
them (a rule or a person: customer, team, title, priority, ``due_in``) and assign or
cancel them. Viewers have no access. An API key is no person: it cannot claim (hold) a
task, and with the agent role it has no queue; with an operator's it may close tasks
(a telephony system recording outcomes). Closing emits the ``service_task_closed`` event
(see :mod:`perennial.tasks.outcomes`); notes are required when the outcome is
``declined``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from perennial.api.security import require
from perennial.api.state import AppState, State
from perennial.api.task_models import (
    AssignIn,
    CloseIn,
    NewTaskIn,
    TaskOut,
    TaskPage,
    task_error,
    task_out,
)
from perennial.journeys.durations import parse_duration
from perennial.tasks.actors import TaskActor, actor_for
from perennial.tasks.creation import NewTask, create_task
from perennial.tasks.errors import TaskError
from perennial.tasks.outcomes import close_task
from perennial.tasks.queue import QueueKey, StatusFilter, TaskQuery, list_tasks, queue_key
from perennial.tasks.records import TASK_ID_PATTERN, TEAM_PATTERN, Task
from perennial.tasks.transitions import assign_task, cancel_task, claim_task, visible_task

__all__ = [
    "Manager",
    "TaskId",
    "Worker",
    "assign",
    "cancel",
    "claim",
    "close",
    "create",
    "router",
    "show",
    "task_list",
]

router = APIRouter(
    prefix="/v1/tasks",
    tags=["tasks"],
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)

Worker = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT))]
Manager = Annotated[Principal, Depends(require(Role.OPERATOR))]
_Change = Callable[[sa.Connection, TaskActor, datetime], Task]
TaskId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=TASK_ID_PATTERN, description="The task's id.")
]


@router.get("", response_model=TaskPage, summary="A queue: the tasks you may see, by due time")
def task_list(
    principal: Worker,
    state: State,
    status: Annotated[
        StatusFilter, Query(description="active: open and in progress; all: every status.")
    ] = "active",
    team: Annotated[str | None, Query(max_length=100, pattern=TEAM_PATTERN)] = None,
    mine: Annotated[bool, Query(description="Only the tasks you hold.")] = False,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or none.")] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> TaskPage:
    """Overdue first (their due time passed), then by due time, priority (urgent first) and
    id. Agents get their own and their teams' tasks; operators every task."""
    now = state.settings.now()
    query = TaskQuery(status=status, team=team, mine=mine, overdue=overdue, customer_id=customer_id)
    with state.engine.connect() as connection:
        actor = actor_for(connection, principal)
        tasks = list_tasks(
            connection, actor, query, now=now, after=_queue_cursor(cursor), limit=limit + 1
        )
    page = tasks[:limit]
    following = None
    if len(tasks) > limit:
        due, rank, task_id = queue_key(page[-1])
        following = encode_cursor([due.isoformat(), rank, task_id])
    return TaskPage(items=[task_out(task, now) for task in page], next_cursor=following)


@router.post("", response_model=TaskOut, status_code=201, summary="Create a task")
def create(body: NewTaskIn, principal: Manager, state: State) -> TaskOut:
    """Assigned at once to the team's next available agent in rotation, or left in the
    team's queue when it has none."""
    now = state.settings.now()
    try:
        due_in = parse_duration(body.due_in)
    except ValueError as error:
        raise ApiError(422, "invalid_input", str(error), "body.due_in") from None
    new = NewTask(
        customer_id=body.customer_id,
        title=body.title,
        team=body.team,
        priority=body.priority,
        due_at=now + due_in,
        source=f"api:{principal.subject}",
        task_id=body.task_id,
    )
    try:
        with state.engine.begin() as connection:
            task = create_task(connection, new, now=now, actor=principal.subject)
    except TaskError as error:
        raise task_error(error) from None
    return task_out(task, now)


@router.get("/{task_id}", response_model=TaskOut, summary="One task")
def show(task_id: TaskId, principal: Worker, state: State) -> TaskOut:
    now = state.settings.now()
    try:
        with state.engine.connect() as connection:
            task = visible_task(connection, actor_for(connection, principal), task_id)
    except TaskError as error:
        raise task_error(error) from None
    return task_out(task, now)


@router.post("/{task_id}/claim", response_model=TaskOut, summary="Take the task and start it")
def claim(task_id: TaskId, principal: Worker, state: State) -> TaskOut:
    """Yours, or your team's unassigned one (operators: any active task); it becomes
    ``in_progress``. A signed-in person only: an API key cannot hold a task."""
    return _change(state, principal, lambda c, actor, now: claim_task(c, actor, task_id, now=now))


@router.post("/{task_id}/assign", response_model=TaskOut, summary="Give the task to someone")
def assign(task_id: TaskId, body: AssignIn, principal: Manager, state: State) -> TaskOut:
    """To an enabled user with the agent (or operator, admin) role, or back to the team's
    queue (``null``); the task is ``open`` until they claim it."""
    return _change(
        state,
        principal,
        lambda c, actor, now: assign_task(c, actor, task_id, body.assignee, now=now),
    )


@router.post("/{task_id}/close", response_model=TaskOut, summary="Close with an outcome")
def close(task_id: TaskId, body: CloseIn, principal: Worker, state: State) -> TaskOut:
    """Records the outcome and notes and emits the ``service_task_closed`` event in one
    transaction. A closed or cancelled task cannot be closed again (409)."""
    return _change(
        state,
        principal,
        lambda c, actor, now: close_task(c, actor, task_id, body.outcome, body.notes, now=now),
    )


@router.post("/{task_id}/cancel", response_model=TaskOut, summary="Withdraw the task")
def cancel(task_id: TaskId, principal: Manager, state: State) -> TaskOut:
    return _change(state, principal, lambda c, actor, now: cancel_task(c, actor, task_id, now=now))


def _change(state: AppState, principal: Principal, change: _Change) -> TaskOut:
    now = state.settings.now()
    try:
        with state.engine.begin() as connection:
            task = change(connection, actor_for(connection, principal), now)
    except TaskError as error:
        raise task_error(error) from None
    return task_out(task, now)


def _queue_cursor(cursor: str | None) -> QueueKey | None:
    if cursor is None:
        return None
    due, rank, task_id = decode_cursor(cursor, 3)
    try:
        at = datetime.fromisoformat(due) if isinstance(due, str) else None
    except ValueError:
        at = None
    valid = (
        at is not None
        and at.tzinfo is not None
        and isinstance(rank, int)
        and not isinstance(rank, bool)
        and isinstance(task_id, str)
    )
    if not valid or at is None:
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this endpoint issued", "cursor"
        )
    return at, int(rank), str(task_id)
