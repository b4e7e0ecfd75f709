"""Where journey definitions live in the operational store (schema owned by migration 0005).

Every save writes a new immutable version row holding the whole document as
canonical JSON; the header row says which version is live and the journey's
status. Runs (a later migration) record the version they started on, so
publishing a new version never moves a customer already in a run.
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA

__all__ = ["JOURNEYS", "JOURNEY_VERSIONS", "STATUSES"]

STATUSES = ("draft", "active", "paused", "archived")

_TS = sa.DateTime(timezone=True)
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
