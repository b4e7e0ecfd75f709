"""``/v1/tasks/teams``: which agents take which team's tasks, in rotation.

Operators (and admins) read the teams; only admins change membership (it decides who
sees which customers' tasks). A member is a user id; users with the agent, operator or
admin role can be members (a viewer: 422). Adding a member twice changes nothing;
removing one who is not a member is a 404.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path

from perennial.access.roles import Principal, Role
from perennial.api.errors import ErrorBody
from perennial.api.security import require
from perennial.api.state import State
from perennial.api.task_models import TeamOut, task_error, team_out
from perennial.tasks.assignment import next_in_rotation
from perennial.tasks.errors import TaskError
from perennial.tasks.records import TEAM_PATTERN
from perennial.tasks.teams import Team, add_member, list_teams, remove_member

__all__ = ["TeamName", "UserId", "add", "remove", "router", "teams"]

router = APIRouter(
    prefix="/v1/tasks/teams",
    tags=["tasks"],
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)

Manager = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require())]
TeamName = Annotated[
    str, Path(max_length=100, pattern=TEAM_PATTERN, description="Team name (as in journeys).")
]
UserId = Annotated[str, Path(min_length=1, max_length=32, description="The user's id.")]


@router.get("", response_model=list[TeamOut], summary="Teams, their members and who is next")
def teams(_: Manager, state: State) -> list[TeamOut]:
    with state.engine.connect() as connection:
        return [_out(team) for team in list_teams(connection)]


@router.put(
    "/{team}/members/{user_id}", response_model=TeamOut, summary="Add a member (end of rotation)"
)
def add(team: TeamName, user_id: UserId, principal: Admin, state: State) -> TeamOut:
    now = state.settings.now()
    try:
        with state.engine.begin() as connection:
            add_member(connection, team, user_id, actor=principal.subject, now=now)
            return _team(connection, team)
    except TaskError as error:
        raise task_error(error, body=False) from None


@router.delete("/{team}/members/{user_id}", response_model=TeamOut, summary="Remove a member")
def remove(team: TeamName, user_id: UserId, principal: Admin, state: State) -> TeamOut:
    """The tasks they hold stay theirs (a manager reassigns them)."""
    now = state.settings.now()
    try:
        with state.engine.begin() as connection:
            remove_member(connection, team, user_id, actor=principal.subject, now=now)
            return _team(connection, team)
    except TaskError as error:
        raise task_error(error, body=False) from None


def _team(connection: sa.Connection, name: str) -> TeamOut:
    return next(_out(team) for team in list_teams(connection) if team.name == name)


def _out(team: Team) -> TeamOut:
    return team_out(team, next_in_rotation(list(team.members), team.last_position))
