"""The features' edge-case store, shared by the lifecycle tests that read it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perennial.config import Settings
from perennial.store.backends import Backend, open_backend
from tests.features.fixture_store import build_fixture_store


@pytest.fixture(scope="session")
def fixture_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The features' edge-case store (see ``tests/features/fixture_store.py``)."""
    home = tmp_path_factory.mktemp("lifecycle-fixture") / "home"
    settings = Settings(home=home)
    build_fixture_store(settings, home / "sources")
    return settings


@pytest.fixture
def fixture_backend(fixture_settings: Settings) -> Iterator[Backend]:
    with open_backend(fixture_settings) as opened:
        yield opened
