"""Round-robin: each new task of a team goes to the next available member in rotation.

The team's row is the rotation's cursor (the position of the member who got the last task)
and its lock: the first statement of an assignment is a write to that row, so on
PostgreSQL two workers creating tasks for one team at once queue up on the row lock and
the second sees the first's choice, and on SQLite the write lock does the same. Skipped:
disabled members and members who lost every role that can hold tasks. A team with no
available member leaves the task unassigned, waiting in the team's queue until an agent of
the team claims it (or a manager assigns it).
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.tasks.tables import TASK_TEAMS
from perennial.tasks.teams import TeamMember, lock_team, team_members

__all__ = ["next_assignee", "next_in_rotation"]


def next_assignee(connection: sa.Connection, team: str | None) -> str | None:
    """The user id of the member who gets the team's next task, with the cursor moved to
    them in the caller's transaction (so a rolled-back task gives the turn back); ``None``
    when no member is available (the cursor does not move)."""
    if team is None or not lock_team(connection, team):
        return None
    last = connection.execute(
        sa.select(TASK_TEAMS.c.last_position).where(TASK_TEAMS.c.team == team)
    ).scalar()
    chosen = next_in_rotation(team_members(connection, team), last)
    if chosen is None:
        return None
    connection.execute(
        TASK_TEAMS.update().where(TASK_TEAMS.c.team == team).values(last_position=chosen.position)
    )
    return chosen.user_id


def next_in_rotation(members: list[TeamMember], last_position: int | None) -> TeamMember | None:
    """The first available member after ``last_position``, wrapping around to the start.

    ``members`` in position order. Positions are never reused, so a member who left (or a
    disabled one) simply no longer takes a turn and the others keep their order.
    """
    available = [member for member in members if member.available]
    if not available:
        return None
    if last_position is not None:
        for member in available:
            if member.position > last_position:
                return member
    return available[0]
