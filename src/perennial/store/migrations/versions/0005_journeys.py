"""Journeys: versioned definitions and their status.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_NAME = sa.String(100)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("live_version", sa.Integer),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(160), nullable=False),
    )
    op.create_table(
        "journey_versions",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("published_at", _TS),
    )


def downgrade() -> None:
    op.drop_table("journey_versions")
    op.drop_table("journeys")
