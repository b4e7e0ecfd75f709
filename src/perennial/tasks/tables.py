"""Where task teams, their members and recorded SLA breaches live (schema owned by migration
0007). The tasks themselves are :data:`perennial.access.tables.SERVICE_TASKS` (masking reads
them to decide who may see a customer's phone)."""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA, UtcTimestamp

__all__ = ["TASK_SLA_BREACHES", "TASK_TEAMS", "TASK_TEAM_MEMBERS"]

_TS = UtcTimestamp()
_TEAM = sa.String(100)

TASK_TEAMS = sa.Table(
    "task_teams",
    METADATA,
    sa.Column("team", _TEAM, primary_key=True),
    sa.Column("last_position", sa.Integer),
    sa.Column("joined", sa.Integer, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)
"""One row per team that ever had a member: the round-robin cursor (``last_position``: the
member position that got the last task), how many joins it has seen (``joined``: the next
member's position is one more, so positions are never reused) and the row assignment
locks."""

TASK_TEAM_MEMBERS = sa.Table(
    "task_team_members",
    METADATA,
    sa.Column("team", _TEAM, sa.ForeignKey("task_teams.team"), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("added_at", _TS, nullable=False),
    sa.UniqueConstraint("team", "position", name="uq_task_team_members_position"),
    sa.Index("ix_task_team_members_user", "user_id"),
)
"""``position``: the member's place in the rotation (order of joining, never reused)."""

TASK_SLA_BREACHES = sa.Table(
    "task_sla_breaches",
    METADATA,
    sa.Column("task_id", sa.String(32), sa.ForeignKey("service_tasks.task_id"), primary_key=True),
    sa.Column("team", _TEAM),
    sa.Column("due_at", _TS, nullable=False),
    sa.Column("recorded_at", _TS, nullable=False),
    sa.Index("ix_task_sla_breaches_recorded", "recorded_at"),
)
"""A task that was still open at its due time, recorded once (the primary key) when first seen."""
