"""Where segments and tags live in the operational store (schema owned by migration 0004).

Definitions are versioned documents: every save of a segment or tag writes a new
version row, and the header row points at the current one. Membership is the
current set of members with the instant each entered; every change is also
appended to ``segment_changes``, the enter/exit event log that journeys read in
order of ``change_seq``. Tags carry their source and the reason they were set.
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA, UtcTimestamp

__all__ = [
    "CUSTOMER_TAGS",
    "SEGMENTS",
    "SEGMENT_CHANGES",
    "SEGMENT_MEMBERS",
    "SEGMENT_SIZES",
    "SEGMENT_VERSIONS",
    "TAGS",
]

_TS = UtcTimestamp()
_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NAME = sa.String(100)
_CUSTOMER = sa.String(255)

SEGMENTS = sa.Table(
    "segments",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("refreshed_at", _TS),
    sa.Column("members", sa.Integer, nullable=False),
)

SEGMENT_VERSIONS = sa.Table(
    "segment_versions",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("expression", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
)

SEGMENT_MEMBERS = sa.Table(
    "segment_members",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("customer_id", _CUSTOMER, primary_key=True),
    sa.Column("entered_at", _TS, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

SEGMENT_CHANGES = sa.Table(
    "segment_changes",
    METADATA,
    sa.Column("change_seq", _SEQUENCE, primary_key=True, autoincrement=True),
    sa.Column("name", _NAME, nullable=False),
    sa.Column("customer_id", _CUSTOMER, nullable=False),
    sa.Column("change", sa.String(8), nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Index("ix_segment_changes_customer", "customer_id", "change_seq"),
    sa.Index("ix_segment_changes_name", "name", "change_seq"),
)

SEGMENT_SIZES = sa.Table(
    "segment_sizes",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("members", sa.Integer, nullable=False),
)

TAGS = sa.Table(
    "tags",
    METADATA,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("expression", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

CUSTOMER_TAGS = sa.Table(
    "customer_tags",
    METADATA,
    sa.Column("customer_id", _CUSTOMER, primary_key=True),
    sa.Column("tag", _NAME, primary_key=True),
    sa.Column("value", sa.String(400)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("set_at", _TS, nullable=False),
    sa.Column("set_by", sa.String(160), nullable=False),
    sa.Index("ix_customer_tags_tag", "tag"),
)
