"""A migrated operational store and a helper to read its audit log."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from perennial.access.audit import query_audit
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate


@pytest.fixture
def engine(settings: Settings) -> sa.Engine:
    migrate(settings)
    return create_engine_for(settings)


def audit_actions(engine: sa.Engine, **filters: Any) -> list[str]:
    """Audit actions, oldest first."""
    with engine.connect() as connection:
        return [row["action"] for row in reversed(query_audit(connection, **filters))]
