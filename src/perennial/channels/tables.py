"""Consent and the suppression list in the operational store (migration 0006).

Both are read by the guardrails in the transaction that decides a send, so an
unsubscribe is honoured by the very next send, not the next batch.
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA, UtcTimestamp

__all__ = ["CONSENTS", "SUPPRESSIONS"]

_TS = UtcTimestamp()

CONSENTS = sa.Table(
    "consents",
    METADATA,
    sa.Column("customer_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("source", sa.String(160), nullable=False),
)
"""``opted_in`` or ``opted_out`` per customer and channel; no row means never asked."""

SUPPRESSIONS = sa.Table(
    "suppressions",
    METADATA,
    sa.Column("customer_id", sa.String(255), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("source", sa.String(160), nullable=False),
)
"""Customers who get nothing at all (hard bounce, complaint, legal hold)."""
