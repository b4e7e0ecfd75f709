"""Where journeys live in the operational store (schema owned by migrations 0005 and 0006).

Every save writes a new immutable version row holding the whole document as
canonical JSON; the header row says which version is live and the journey's
status. Runs record the version they started on, so publishing a new version
never moves a customer already in a run.
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA, UtcTimestamp

__all__ = [
    "COUPON_CODES",
    "JOURNEYS",
    "JOURNEY_CURSORS",
    "JOURNEY_LOG",
    "JOURNEY_OUTBOX",
    "JOURNEY_RUNS",
    "JOURNEY_VERSIONS",
    "STATUSES",
]

STATUSES = ("draft", "active", "paused", "archived")

_TS = UtcTimestamp()
_NAME = sa.String(100)

JOURNEYS = sa.Table(
    "journeys",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("live_version", sa.Integer),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("updated_by", sa.String(160), nullable=False),
)

JOURNEY_VERSIONS = sa.Table(
    "journey_versions",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("published_at", _TS),
)

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CUSTOMER = sa.String(255)
_KEY = sa.String(64)

JOURNEY_RUNS = sa.Table(
    "journey_runs",
    METADATA,
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
    sa.UniqueConstraint("journey", "customer_id", "occurrence", name="uq_journey_runs_occurrence"),
    sa.Index("ix_journey_runs_due", "status", "due_at"),
    sa.Index("ix_journey_runs_customer", "customer_id", "journey"),
    sa.Index("ix_journey_runs_waiting", "wait_event", "customer_id"),
)
"""One row per (journey, customer, trigger occurrence): where the run is and when it is next
due. ``context`` holds what earlier steps produced (the coupon code) as JSON."""

JOURNEY_OUTBOX = sa.Table(
    "journey_outbox",
    METADATA,
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
    sa.Index("ix_journey_outbox_due", "status", "due_at"),
    sa.Index("ix_journey_outbox_customer", "customer_id", "done_at"),
)
"""Every external effect (a message, a webhook call), keyed by its idempotency key: written in
the transaction that moves the run past the step, dispatched afterwards."""

JOURNEY_LOG = sa.Table(
    "journey_log",
    METADATA,
    sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
    sa.Column("journey", _NAME, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("customer_id", _CUSTOMER, nullable=False),
    sa.Column("step", _NAME),
    sa.Column("what", sa.String(16), nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_journey_log_step", "journey", "step", "what"),
    sa.Index("ix_journey_log_customer", "customer_id", "seq"),
)
"""What happened to each run, step by step (per-step counts, the customer's timeline)."""

JOURNEY_CURSORS = sa.Table(
    "journey_cursors",
    METADATA,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
"""How far each reader of an append-only log (signals, segment changes) has read."""

COUPON_CODES = sa.Table(
    "coupon_codes",
    METADATA,
    sa.Column("pool", _NAME, primary_key=True),
    sa.Column("code", sa.String(100), primary_key=True),
    sa.Column("customer_id", _CUSTOMER),
    sa.Column("effect_key", _KEY, unique=True),
    sa.Column("loaded_at", _TS, nullable=False),
    sa.Column("assigned_at", _TS),
    sa.Index("ix_coupon_codes_free", "pool", "assigned_at"),
)
