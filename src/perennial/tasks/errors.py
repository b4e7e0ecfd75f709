"""What can go wrong with a task, each with the status the API answers and the CLI's exit code.

Every operation checks before it writes and writes in the caller's transaction, so an error
leaves the task, the event inbox and the audit log exactly as they were.
"""

from __future__ import annotations

from perennial.errors import ExitCode, PerennialError

__all__ = [
    "TaskAccessError",
    "TaskConflictError",
    "TaskError",
    "TaskInputError",
    "UnknownTaskError",
    "UnknownTeamMemberError",
]


class TaskError(PerennialError):
    """Base of every task error; nothing was changed."""

    exit_code = ExitCode.INVALID_INPUT


class UnknownTaskError(TaskError):
    """No task has this id (API: 404)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task with id {task_id!r}")


class UnknownTeamMemberError(TaskError):
    """The user is not in the team, or no such user (API: 404)."""


class TaskAccessError(TaskError):
    """The caller may not see or work this task: it is neither theirs nor their team's
    (API: 403)."""


class TaskConflictError(TaskError):
    """The task's state does not allow the change: closing a closed task, claiming one
    another agent holds, an id already taken (API: 409)."""


class TaskInputError(TaskError):
    """A value is not acceptable: an unknown outcome, missing notes, a user who cannot hold
    tasks (API: 422 naming ``field``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)
