"""Segments and tags: versioned definitions, live membership, the enter/exit log, tags.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NAME = sa.String(100)
_CUSTOMER = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("refreshed_at", _TS),
        sa.Column("members", sa.Integer, nullable=False),
    )
    op.create_table(
        "segment_versions",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("expression", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
    )
    op.create_table(
        "segment_members",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("customer_id", _CUSTOMER, primary_key=True),
        sa.Column("entered_at", _TS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "segment_changes",
        sa.Column("change_seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("customer_id", _CUSTOMER, nullable=False),
        sa.Column("change", sa.String(8), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
    )
    op.create_index("ix_segment_changes_customer", "segment_changes", ["customer_id", "change_seq"])
    op.create_index("ix_segment_changes_name", "segment_changes", ["name", "change_seq"])
    op.create_table(
        "segment_sizes",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("members", sa.Integer, nullable=False),
    )
    op.create_table(
        "tags",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("expression", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "customer_tags",
        sa.Column("customer_id", _CUSTOMER, primary_key=True),
        sa.Column("tag", _NAME, primary_key=True),
        sa.Column("value", sa.String(400)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("set_at", _TS, nullable=False),
        sa.Column("set_by", sa.String(160), nullable=False),
    )
    op.create_index("ix_customer_tags_tag", "customer_tags", ["tag"])


def downgrade() -> None:
    for table in (
        "customer_tags",
        "tags",
        "segment_sizes",
        "segment_changes",
        "segment_members",
        "segment_versions",
        "segments",
    ):
        op.drop_table(table)
