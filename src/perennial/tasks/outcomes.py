"""Closing a task with its outcome, and the event that carries the outcome back.

Closing records the outcome and notes, sets ``closed_at`` and appends a
``service_task_closed`` event to the ingest inbox, all in the caller's transaction: the
drainer moves the event into the warehouse (segments: ``did service_task_closed where
outcome == 'won_back'``) and onto the journeys' event feed (``wait_for_event``, goals) like
any tracked event. The event's id is derived from the task, so draining twice stores it
once. Its properties: ``task_id``, ``outcome``, ``team``, ``priority``, ``source``,
``journey`` (when a journey made the task) and ``on_time`` (closed by the due time). Notes
stay on the task: they may hold what a customer said, which events do not carry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from perennial.access.audit import AuditEntry, record
from perennial.ingest.inbox import InboxEntry, InboxItem, append_entries
from perennial.ingest.records import timestamp_text
from perennial.tasks.actors import TaskActor
from perennial.tasks.errors import TaskAccessError, TaskInputError
from perennial.tasks.records import (
    NOTES_MAX_LENGTH,
    NOTES_REQUIRED,
    Outcome,
    Task,
    TaskStatus,
    get_task,
)
from perennial.tasks.transitions import check_active, compare_and_set, visible_task

__all__ = ["CLOSED_EVENT", "EVENT_PRINCIPAL", "check_outcome", "close_task", "closed_event"]

CLOSED_EVENT = "service_task_closed"
EVENT_PRINCIPAL = "tasks"
"""The inbox's principal for task events (with the idempotency key ``<task id>:closed``)."""


def check_outcome(outcome: str, notes: str | None) -> tuple[Outcome, str | None]:
    """The outcome and notes (trimmed; blank is none) if acceptable, else a 422 naming the
    field: an unknown outcome, notes past 2,000 characters, no notes where required."""
    try:
        chosen = Outcome(outcome)
    except ValueError:
        known = ", ".join(o.value for o in Outcome)
        raise TaskInputError(
            f"unknown outcome {outcome!r}; outcomes are {known}", "outcome"
        ) from None
    text = (notes or "").strip() or None
    if text is not None and len(text) > NOTES_MAX_LENGTH:
        raise TaskInputError(f"notes have at most {NOTES_MAX_LENGTH} characters", "notes")
    if text is None and chosen in NOTES_REQUIRED:
        raise TaskInputError(f"say why in the notes: they are required for {chosen.value}", "notes")
    return chosen, text


def close_task(
    connection: sa.Connection,
    actor: TaskActor,
    task_id: str,
    outcome: str,
    notes: str | None = None,
    *,
    now: datetime,
) -> Task:
    """Close the task with ``outcome``; an agent closing an unassigned task of their team
    becomes its holder. Everything is checked before anything is written."""
    chosen, text = check_outcome(outcome, notes)
    task = visible_task(connection, actor, task_id)
    check_active(task, "closed")
    if not actor.may_work(task):
        raise TaskAccessError(
            f"task {task_id} is held by {task.assignee_name or task.assignee}; only they "
            "(or a manager) can close it"
        )
    at = now.astimezone(UTC)
    compare_and_set(
        connection,
        task,
        status=TaskStatus.CLOSED.value,
        outcome=chosen.value,
        notes=text,
        closed_at=at,
        assignee=task.assignee or actor.user_id,
    )
    closed = get_task(connection, task_id)
    append_entries(connection, [_event_entry(closed, at)])
    record(
        connection,
        AuditEntry(
            actor=actor.subject,
            action="task.closed",
            subject_type="task",
            subject_id=task_id,
            detail={"customer_id": task.customer_id, "outcome": chosen.value},
            at=at,
        ),
    )
    return closed


def closed_event(task: Task) -> dict[str, Any]:
    """The ``service_task_closed`` event record of a closed task."""
    if task.closed_at is None or task.outcome is None:
        raise ValueError(f"task {task.task_id} is not closed")
    properties = {
        "task_id": task.task_id,
        "outcome": task.outcome,
        "team": task.team,
        "priority": task.priority,
        "source": task.source,
        "journey": task.journey,
        "on_time": task.due_at is None or task.closed_at <= task.due_at,
    }
    return {
        "event_id": f"task-{task.task_id}-closed",
        "customer_id": task.customer_id,
        "event_type": CLOSED_EVENT,
        "ts": timestamp_text(task.closed_at),
        "properties": {key: value for key, value in properties.items() if value is not None},
    }


def _event_entry(task: Task, at: datetime) -> InboxEntry:
    record_text = orjson.dumps(closed_event(task)).decode()
    return InboxEntry(
        endpoint="track",
        principal=EVENT_PRINCIPAL,
        answer="{}",
        received_at=at,
        items=(InboxItem("events", 0, record_text),),
        idempotency_key=f"{task.task_id}:closed",
    )
