"""Customer-service tasks: teams and their members (round-robin), recorded SLA breaches, and
the indexes the queues and the breach check read.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_TEAM = sa.String(100)


def upgrade() -> None:
    op.create_table(
        "task_teams",
        sa.Column("team", _TEAM, primary_key=True),
        sa.Column("last_position", sa.Integer),
        sa.Column("joined", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "task_team_members",
        sa.Column("team", _TEAM, sa.ForeignKey("task_teams.team"), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("added_at", _TS, nullable=False),
        sa.UniqueConstraint("team", "position", name="uq_task_team_members_position"),
    )
    op.create_index("ix_task_team_members_user", "task_team_members", ["user_id"])
    op.create_table(
        "task_sla_breaches",
        sa.Column(
            "task_id", sa.String(32), sa.ForeignKey("service_tasks.task_id"), primary_key=True
        ),
        sa.Column("team", _TEAM),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_index("ix_task_sla_breaches_recorded", "task_sla_breaches", ["recorded_at"])
    op.create_index("ix_service_tasks_due", "service_tasks", ["status", "due_at"])
    op.create_index("ix_service_tasks_team", "service_tasks", ["team", "status"])


def downgrade() -> None:
    op.drop_index("ix_service_tasks_team", table_name="service_tasks")
    op.drop_index("ix_service_tasks_due", table_name="service_tasks")
    op.drop_table("task_sla_breaches")
    op.drop_table("task_team_members")
    op.drop_table("task_teams")
