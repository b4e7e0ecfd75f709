"""One fixture store per test session: ingesting it takes a second, reading it is cheap."""

from __future__ import annotations

from typing import Any

import pytest

from perennial.config import Settings
from perennial.features import compute_features
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import AS_OF, build_fixture_store


@pytest.fixture(scope="session")
def fixture_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a store holding the edge-case fixture (see ``fixture_store``)."""
    home = tmp_path_factory.mktemp("features") / "home"
    settings = Settings(home=home)
    build_fixture_store(settings, home / "sources")
    return settings


@pytest.fixture(scope="session")
def fixture_features(fixture_settings: Settings) -> dict[str, dict[str, Any]]:
    """The fixture's features as of ``AS_OF`` on DuckDB: customer id -> feature -> value."""
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    with open_backend(fixture_settings) as backend:
        rows = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF)).to_pylist()
    return {row["customer_id"]: row for row in rows}
