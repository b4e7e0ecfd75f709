"""Journey runs, the outbox, the step log, the event feed, cursors, coupons, consent, suppression.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_NAME = sa.String(100)
_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CUSTOMER = sa.String(255)
_KEY = sa.String(64)


def upgrade() -> None:
    for column in (
        sa.Column("team", sa.String(100)),
        sa.Column("priority", sa.String(16)),
        sa.Column("source", sa.String(160)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("notes", sa.Text),
        sa.Column("closed_at", _TS),
    ):
        op.add_column("service_tasks", column)
    op.create_table(
        "journey_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("journey", _NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("customer_id", _CUSTOMER, nullable=False),
        sa.Column("occurrence", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", _NAME),
        sa.Column("variant", _NAME),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("entered_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("due_at", _TS),
        sa.Column("wait_event", _NAME),
        sa.Column("waiting_since", _TS),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", _TS),
        sa.UniqueConstraint(
            "journey", "customer_id", "occurrence", name="uq_journey_runs_occurrence"
        ),
    )
    op.create_index("ix_journey_runs_due", "journey_runs", ["status", "due_at"])
    op.create_index("ix_journey_runs_customer", "journey_runs", ["customer_id", "journey"])
    op.create_index("ix_journey_runs_waiting", "journey_runs", ["wait_event", "customer_id"])
    op.create_table(
        "journey_outbox",
        sa.Column("effect_key", _KEY, primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("journey", _NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("customer_id", _CUSTOMER, nullable=False),
        sa.Column("step", _NAME, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("transactional", sa.Boolean, nullable=False),
        sa.Column("quiet_hours", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", _TS),
    )
    op.create_index("ix_journey_outbox_due", "journey_outbox", ["status", "due_at"])
    op.create_index("ix_journey_outbox_customer", "journey_outbox", ["customer_id", "done_at"])
    op.create_table(
        "journey_log",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("journey", _NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("customer_id", _CUSTOMER, nullable=False),
        sa.Column("step", _NAME),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_journey_log_step", "journey_log", ["journey", "step", "what"])
    op.create_index("ix_journey_log_customer", "journey_log", ["customer_id", "seq"])
    op.create_table(
        "event_feed",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("customer_id", _CUSTOMER, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("properties", sa.Text),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_event_feed_customer", "event_feed", ["customer_id", "event_type"])
    op.create_table(
        "journey_cursors",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "coupon_codes",
        sa.Column("pool", _NAME, primary_key=True),
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("customer_id", _CUSTOMER),
        sa.Column("effect_key", _KEY, unique=True),
        sa.Column("loaded_at", _TS, nullable=False),
        sa.Column("assigned_at", _TS),
    )
    op.create_index("ix_coupon_codes_free", "coupon_codes", ["pool", "assigned_at"])
    op.create_table(
        "consents",
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("source", sa.String(160), nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("source", sa.String(160), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("service_tasks") as batch:
        for name in ("closed_at", "notes", "outcome", "source", "priority", "team"):
            batch.drop_column(name)
    op.drop_table("suppressions")
    op.drop_table("consents")
    op.drop_table("coupon_codes")
    op.drop_table("journey_cursors")
    op.drop_table("event_feed")
    op.drop_table("journey_log")
    op.drop_table("journey_outbox")
    op.drop_table("journey_runs")
