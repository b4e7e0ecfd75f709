"""Signing a test client in as a role, and API keys to read the API with in the same test."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from tests.api.accounts import Account, add_account, sign_in


def sign_in_as(
    client: TestClient, app: FastAPI, role: Role, username: str | None = None
) -> Account:
    """A new user holding ``role``, signed in on ``client`` (its cookie jar keeps the session)."""
    account = add_account(app, username or f"{role.value}-user", role)
    sign_in(client, account)
    return account


def api_headers(app: FastAPI, role: Role = Role.VIEWER) -> dict[str, str]:
    """An ``Authorization`` header with a fresh API key holding ``role``."""
    with app.state.perennial.engine.begin() as connection:
        issued = create_api_key(
            connection, name=f"web test {role}", roles=frozenset({role}), created_by="tests"
        )
    return {"Authorization": f"Bearer {issued.token}", "Accept": "application/json"}
