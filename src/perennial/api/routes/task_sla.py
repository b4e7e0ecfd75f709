"""``/v1/tasks/sla`` and ``/v1/tasks/breaches``: the managers' view of service levels.

Operators (and admins) only. The SLA view counts per team what is open and overdue now,
and over the last ``days`` what was closed and how many tasks that fell due were not done
in time (:mod:`perennial.tasks.sla`). Breaches are the tasks the worker found still open
at their due time, newest first, each listed once with the task as it is now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError
from perennial.api.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from perennial.api.security import require
from perennial.api.state import State
from perennial.api.task_models import BreachPage, SlaOut, breach_out, team_sla_out
from perennial.tasks.breaches import BreachKey, list_breaches
from perennial.tasks.records import TEAM_PATTERN
from perennial.tasks.sla import SLA_WINDOW_DAYS, team_sla

__all__ = ["breaches", "router", "sla"]

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

Manager = Annotated[Principal, Depends(require(Role.OPERATOR))]


@router.get("/sla", response_model=SlaOut, summary="Per team: open, overdue, closed, breach rate")
def sla(
    _: Manager,
    state: State,
    days: Annotated[int, Query(ge=1, le=366, description="The window, in days.")] = SLA_WINDOW_DAYS,
) -> SlaOut:
    now = state.settings.now()
    with state.engine.connect() as connection:
        rows = team_sla(connection, now, days=days)
    return SlaOut(as_of=now, days=days, teams=[team_sla_out(row) for row in rows])


@router.get("/breaches", response_model=BreachPage, summary="SLA breaches, newest first")
def breaches(
    _: Manager,
    state: State,
    team: Annotated[str | None, Query(max_length=100, pattern=TEAM_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> BreachPage:
    now = state.settings.now()
    with state.engine.connect() as connection:
        found = list_breaches(connection, team=team, after=_cursor(cursor), limit=limit + 1)
    page = found[:limit]
    following = None
    if len(found) > limit:
        at, task_id = page[-1].key
        following = encode_cursor([at.isoformat(), task_id])
    return BreachPage(items=[breach_out(b, now) for b in page], next_cursor=following)


def _cursor(cursor: str | None) -> BreachKey | None:
    if cursor is None:
        return None
    at_text, task_id = decode_cursor(cursor, 2)
    try:
        at = datetime.fromisoformat(at_text) if isinstance(at_text, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or not isinstance(task_id, str):
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this endpoint issued", "cursor"
        )
    return at, task_id
