"""The session's demo warehouse and serving store (see ``demo_store.py``)."""

from __future__ import annotations

import pytest

from tests.serving.demo_store import DemoStore, demo_store


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)
