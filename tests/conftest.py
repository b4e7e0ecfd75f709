"""Shared fixtures: a fresh, empty Perennial home per test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from perennial.config import Settings

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
"""The clock ingest tests run at: data after this instant is 'in the future'."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")
