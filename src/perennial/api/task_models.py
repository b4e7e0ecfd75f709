"""What the task endpoints take and answer, and how a task error becomes an HTTP answer.

Statuses: 404 no such task (or user), 403 a task outside the caller's queue (or an API key
trying to hold one), 409 a change the task's state does not allow (closing a closed task,
claiming one another agent holds, an id that is taken), 422 a value that is not acceptable
(naming the field).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perennial.api.errors import ApiError
from perennial.tasks.breaches import SlaBreach
from perennial.tasks.errors import (
    TaskAccessError,
    TaskConflictError,
    TaskError,
    TaskInputError,
    UnknownTaskError,
    UnknownTeamMemberError,
)
from perennial.tasks.records import (
    NOTES_MAX_LENGTH,
    TASK_ID_PATTERN,
    TEAM_PATTERN,
    TITLE_MAX_LENGTH,
    Task,
)
from perennial.tasks.sla import TeamSla
from perennial.tasks.teams import Team, TeamMember

__all__ = [
    "AssignIn",
    "BreachOut",
    "BreachPage",
    "CloseIn",
    "NewTaskIn",
    "SlaOut",
    "TaskOut",
    "TaskPage",
    "TeamMemberOut",
    "TeamOut",
    "TeamSlaOut",
    "breach_out",
    "task_error",
    "task_out",
    "team_out",
    "team_sla_out",
]

OutcomeName = Literal["won_back", "declined", "unreachable", "wrong_number"]
PriorityName = Literal["low", "normal", "high", "urgent"]
StatusName = Literal["open", "in_progress", "closed", "cancelled"]


class TaskOut(BaseModel):
    task_id: str
    customer_id: str
    title: str
    team: str | None
    priority: str | None = Field(description="urgent, high, normal or low.")
    status: StatusName
    assignee: str | None = Field(description="The holder's username; null: in the team's queue.")
    assignee_id: str | None
    created_at: datetime
    due_at: datetime | None = Field(description="The SLA: done by then.")
    overdue: bool = Field(description="Open or in progress, and past the due time.")
    source: str | None = Field(description="journey:<name>, api:<caller>, cli, ...")
    outcome: str | None
    notes: str | None
    closed_at: datetime | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page.")


class NewTaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=256)
    team: str = Field(max_length=100, pattern=TEAM_PATTERN)
    title: str = Field(min_length=1, max_length=TITLE_MAX_LENGTH)
    priority: PriorityName = "normal"
    due_in: str = Field(
        default="24h", max_length=32, description="Done within: 30m, 4h, 24h, 2d, 1d12h."
    )
    task_id: str | None = Field(
        default=None,
        max_length=32,
        pattern=TASK_ID_PATTERN,
        description="Choose the id (a retried create is then refused, not doubled); "
        "default a new random one.",
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(
        max_length=64, description="Username of the new holder; null: back to the team's queue."
    )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: OutcomeName
    notes: str | None = Field(
        default=None, max_length=NOTES_MAX_LENGTH, description="Required for declined."
    )


class TeamMemberOut(BaseModel):
    user_id: str
    username: str
    display_name: str
    position: int = Field(description="Place in the rotation.")
    available: bool = Field(description="Enabled and holding a role that works tasks.")


class TeamOut(BaseModel):
    team: str
    members: list[TeamMemberOut]
    next: str | None = Field(description="Username of who gets the team's next task.")


class TeamSlaOut(BaseModel):
    team: str | None
    open: int
    overdue: int
    closed: int = Field(description="Closed within the window.")
    due: int = Field(description="Fell due within the window (cancelled ones aside).")
    breached: int = Field(description="Of those, not closed by their due time.")
    breach_rate: float | None = Field(description="breached / due; null when none fell due.")


class SlaOut(BaseModel):
    as_of: datetime
    days: int
    teams: list[TeamSlaOut]


class BreachOut(BaseModel):
    task: TaskOut
    recorded_at: datetime = Field(description="When the breach was first seen.")


class BreachPage(BaseModel):
    items: list[BreachOut]
    next_cursor: str | None


def task_out(task: Task, now: datetime) -> TaskOut:
    return TaskOut(
        task_id=task.task_id,
        customer_id=task.customer_id,
        title=task.title,
        team=task.team,
        priority=task.priority,
        status=task.status.value,
        assignee=task.assignee_name,
        assignee_id=task.assignee,
        created_at=task.created_at,
        due_at=task.due_at,
        overdue=task.overdue(now),
        source=task.source,
        outcome=task.outcome,
        notes=task.notes,
        closed_at=task.closed_at,
    )


def team_out(team: Team, next_member: TeamMember | None) -> TeamOut:
    return TeamOut(
        team=team.name,
        members=[
            TeamMemberOut(
                user_id=member.user_id,
                username=member.username,
                display_name=member.display_name,
                position=member.position,
                available=member.available,
            )
            for member in team.members
        ],
        next=None if next_member is None else next_member.username,
    )


def team_sla_out(sla: TeamSla) -> TeamSlaOut:
    return TeamSlaOut(
        team=sla.team,
        open=sla.open,
        overdue=sla.overdue,
        closed=sla.closed,
        due=sla.due,
        breached=sla.breached,
        breach_rate=sla.breach_rate,
    )


def breach_out(breach: SlaBreach, now: datetime) -> BreachOut:
    return BreachOut(task=task_out(breach.task, now), recorded_at=breach.recorded_at)


def task_error(error: TaskError, body: bool = True) -> ApiError:
    """The HTTP answer for ``error``; a 422 names the field (``body.notes``)."""
    message = str(error)
    if isinstance(error, UnknownTaskError):
        return ApiError(404, "task_not_found", message)
    if isinstance(error, UnknownTeamMemberError):
        return ApiError(404, "not_found", message)
    if isinstance(error, TaskAccessError):
        return ApiError(403, "forbidden", message)
    if isinstance(error, TaskConflictError):
        return ApiError(409, "conflict", message)
    field = error.field if isinstance(error, TaskInputError) else None
    where = None if field is None else f"{'body' if body else 'path'}.{field}"
    return ApiError(422, "invalid_input", message, where)
