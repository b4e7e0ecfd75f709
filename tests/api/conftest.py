"""An app on a fresh home, a client, and API keys per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.service import create_app

KeyFor = Callable[[Role], dict[str, str]]


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def key_for(app: FastAPI) -> KeyFor:
    """Headers carrying a fresh API key that holds exactly ``role``."""

    def headers(role: Role) -> dict[str, str]:
        with app.state.perennial.engine.begin() as connection:
            issued = create_api_key(
                connection, name=f"test {role}", roles=frozenset({role}), created_by="tests"
            )
        return {"Authorization": f"Bearer {issued.token}"}

    return headers
