"""Who works a task: managers (operators and admins) see and change every task; an agent
sees the tasks they hold and every task of their teams, and works (claims, closes) the
ones they hold and the unassigned ones of their teams. An API key acts for no person: with
a manager's role it may do what a manager does except hold a task; with the agent role it
has no queue at all."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from perennial.access.roles import Principal, Role
from perennial.tasks.errors import TaskAccessError
from perennial.tasks.records import Task
from perennial.tasks.teams import teams_of

__all__ = ["MANAGER_ROLES", "TaskActor", "actor_for"]

MANAGER_ROLES = frozenset({Role.OPERATOR})
"""Roles that see every queue and the SLA view (admins pass every role check)."""


@dataclass(frozen=True, slots=True)
class TaskActor:
    subject: str
    """What the audit log records: ``user:<name>``, ``key:<id>``, ``cli:<os user>``."""
    user_id: str | None
    """The person, who can hold tasks; ``None`` for API keys and the command line."""
    manager: bool
    teams: frozenset[str]

    def may_see(self, task: Task) -> bool:
        if self.manager:
            return True
        if self.user_id is None:
            return False
        return task.assignee == self.user_id or task.team in self.teams

    def may_work(self, task: Task) -> bool:
        """Whether the actor may claim or close ``task`` (its state aside)."""
        if self.manager:
            return True
        if self.user_id is None:
            return False
        if task.assignee is None:
            return task.team in self.teams
        return task.assignee == self.user_id

    def check_sees(self, task: Task) -> None:
        if not self.may_see(task):
            raise TaskAccessError(
                f"task {task.task_id} is not in your queue nor your team's "
                f"({', '.join(sorted(self.teams)) or 'no team'})"
            )


def actor_for(connection: sa.Connection, principal: Principal) -> TaskActor:
    """The actor a request's principal is (their teams read from the store)."""
    user_id = principal.user_id
    return TaskActor(
        subject=principal.subject,
        user_id=user_id,
        manager=principal.has_any(MANAGER_ROLES),
        teams=teams_of(connection, user_id) if user_id is not None else frozenset(),
    )
