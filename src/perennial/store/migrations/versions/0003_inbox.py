"""The ingest inbox: API items made durable before they are acknowledged.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid."""


def upgrade() -> None:
    op.create_table(
        "inbox_requests",
        sa.Column("request_seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("principal", sa.String(160), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("body_digest", sa.String(64)),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", _TS),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("drained_at", _TS),
        sa.UniqueConstraint(
            "principal", "endpoint", "idempotency_key", name="uq_inbox_requests_idempotency"
        ),
    )
    op.create_index("ix_inbox_requests_status", "inbox_requests", ["status", "request_seq"])
    op.create_index("ix_inbox_requests_drained_at", "inbox_requests", ["drained_at"])
    op.create_table(
        "inbox_items",
        sa.Column("item_seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "request_seq",
            _SEQUENCE,
            sa.ForeignKey("inbox_requests.request_seq"),
            nullable=False,
        ),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("column_name", sa.String(128)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_inbox_items_request", "inbox_items", ["request_seq"])


def downgrade() -> None:
    op.drop_table("inbox_items")
    op.drop_table("inbox_requests")
