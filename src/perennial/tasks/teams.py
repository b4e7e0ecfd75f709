"""Teams of agents: who takes a team's tasks, in which order.

A member's ``position`` is their place in the rotation, given when they join and never
reused, so the rotation continues where it was when someone joins or leaves. Users with
the agent, operator or admin role can be members (viewers hold no tasks); a disabled member
stays in the team but is skipped until enabled again. Removing a member leaves the tasks
they hold with them (a manager reassigns them). Every change is audited in the caller's
transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perennial.access.audit import AuditEntry, record
from perennial.access.roles import Role, parse_roles
from perennial.access.tables import USERS
from perennial.tasks.errors import TaskInputError, UnknownTeamMemberError
from perennial.tasks.records import TEAM_PATTERN
from perennial.tasks.tables import TASK_TEAM_MEMBERS, TASK_TEAMS

__all__ = [
    "WORKER_ROLES",
    "Team",
    "TeamMember",
    "add_member",
    "check_team_name",
    "list_teams",
    "lock_team",
    "remove_member",
    "team_members",
    "teams_of",
]

WORKER_ROLES = frozenset({Role.AGENT, Role.OPERATOR, Role.ADMIN})
"""Roles that can hold tasks."""

_TEAM = re.compile(TEAM_PATTERN)


@dataclass(frozen=True, slots=True)
class TeamMember:
    team: str
    user_id: str
    username: str
    display_name: str
    disabled: bool
    roles: frozenset[Role]
    position: int

    @property
    def available(self) -> bool:
        """Takes new tasks: enabled and holding a role that can work tasks."""
        return not self.disabled and bool(self.roles & WORKER_ROLES)


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    members: tuple[TeamMember, ...]
    last_position: int | None
    """The position of the member who got the team's last task (``None``: none yet)."""


def check_team_name(team: str) -> str:
    if not _TEAM.fullmatch(team):
        raise TaskInputError(
            f"{team!r} is not a team name: lower case letters, digits, _ and -, "
            "starting with a letter or digit, up to 100 characters",
            "team",
        )
    return team


def lock_team(connection: sa.Connection, team: str) -> bool:
    """Take the team's row lock for the rest of the transaction (PostgreSQL: a row lock;
    SQLite: the write lock, taken by this first write); ``False`` when the team never had a
    member. Concurrent assignments and joins of one team queue up here."""
    locked = connection.execute(
        TASK_TEAMS.update()
        .where(TASK_TEAMS.c.team == team)
        .values(last_position=TASK_TEAMS.c.last_position)
    )
    return locked.rowcount == 1


def add_member(
    connection: sa.Connection, team: str, user_id: str, *, actor: str, now: datetime
) -> TeamMember:
    """Put the user at the end of the team's rotation (already a member: nothing changes)."""
    check_team_name(team)
    user = _user_row(connection, user_id)
    roles = parse_roles(user["roles"])
    if not roles & WORKER_ROLES:
        raise TaskInputError(
            f"user {user['username']!r} cannot hold tasks: give them the agent role first",
            "user_id",
        )
    _create_team(connection, team, now)
    lock_team(connection, team)
    existing = _member(connection, team, user_id)
    if existing is not None:
        return existing
    joined = connection.execute(
        sa.select(TASK_TEAMS.c.joined).where(TASK_TEAMS.c.team == team)
    ).scalar_one()
    position = int(joined) + 1
    connection.execute(TASK_TEAMS.update().where(TASK_TEAMS.c.team == team).values(joined=position))
    connection.execute(
        TASK_TEAM_MEMBERS.insert().values(
            team=team, user_id=user_id, position=position, added_at=now
        )
    )
    record(
        connection,
        AuditEntry(
            actor=actor,
            action="task_team.member_added",
            subject_type="task_team",
            subject_id=team,
            detail={"user_id": user_id, "username": user["username"], "position": position},
            at=now,
        ),
    )
    return TeamMember(
        team=team,
        user_id=user_id,
        username=user["username"],
        display_name=user["display_name"],
        disabled=bool(user["disabled"]),
        roles=roles,
        position=position,
    )


def remove_member(
    connection: sa.Connection, team: str, user_id: str, *, actor: str, now: datetime
) -> None:
    """Take the user out of the team's rotation; the tasks they hold stay theirs."""
    removed = connection.execute(
        TASK_TEAM_MEMBERS.delete().where(
            TASK_TEAM_MEMBERS.c.team == team, TASK_TEAM_MEMBERS.c.user_id == user_id
        )
    )
    if removed.rowcount != 1:
        raise UnknownTeamMemberError(f"user {user_id!r} is not a member of team {team!r}")
    record(
        connection,
        AuditEntry(
            actor=actor,
            action="task_team.member_removed",
            subject_type="task_team",
            subject_id=team,
            detail={"user_id": user_id},
            at=now,
        ),
    )


def team_members(connection: sa.Connection, team: str) -> list[TeamMember]:
    """The team's members in rotation order."""
    return [
        _member_from(row)
        for row in connection.execute(
            _members_query().where(TASK_TEAM_MEMBERS.c.team == team)
        ).all()
    ]


def list_teams(connection: sa.Connection) -> list[Team]:
    """Every team that ever had a member, by name, members in rotation order."""
    members: dict[str, list[TeamMember]] = {}
    for row in connection.execute(_members_query()).all():
        members.setdefault(row.team, []).append(_member_from(row))
    teams = connection.execute(sa.select(TASK_TEAMS).order_by(TASK_TEAMS.c.team)).all()
    return [Team(row.team, tuple(members.get(row.team, [])), row.last_position) for row in teams]


def teams_of(connection: sa.Connection, user_id: str) -> frozenset[str]:
    """The teams the user is a member of."""
    rows = connection.execute(
        sa.select(TASK_TEAM_MEMBERS.c.team).where(TASK_TEAM_MEMBERS.c.user_id == user_id)
    ).scalars()
    return frozenset(rows)


def _user_row(connection: sa.Connection, user_id: str) -> sa.RowMapping:
    row = connection.execute(sa.select(USERS).where(USERS.c.user_id == user_id)).mappings().first()
    if row is None:
        raise UnknownTeamMemberError(f"no user with id {user_id!r}")
    return row


def _member(connection: sa.Connection, team: str, user_id: str) -> TeamMember | None:
    row = connection.execute(
        _members_query().where(
            TASK_TEAM_MEMBERS.c.team == team, TASK_TEAM_MEMBERS.c.user_id == user_id
        )
    ).first()
    return None if row is None else _member_from(row)


def _members_query() -> sa.Select[Any]:
    members, users = TASK_TEAM_MEMBERS.c, USERS.c
    return (
        sa.select(
            members.team,
            members.user_id,
            members.position,
            users.username,
            users.display_name,
            users.disabled,
            users.roles,
        )
        .select_from(TASK_TEAM_MEMBERS.join(USERS, users.user_id == members.user_id))
        .order_by(members.team, members.position)
    )


def _member_from(row: sa.Row[Any]) -> TeamMember:
    return TeamMember(
        team=row.team,
        user_id=row.user_id,
        username=row.username,
        display_name=row.display_name,
        disabled=bool(row.disabled),
        roles=parse_roles(row.roles),
        position=int(row.position),
    )


def _create_team(connection: sa.Connection, team: str, now: datetime) -> None:
    """Insert the team's row unless it exists (two admins creating one team at once: the
    first insert wins, the other inserts nothing)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(TASK_TEAMS).values(team=team, joined=0, created_at=now).on_conflict_do_nothing()
    )
