"""Users with known passwords, and signing a test client in as one of them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.access.users import create_user


@dataclass(frozen=True)
class Account:
    user_id: str
    username: str
    password: str


def add_account(app: FastAPI, username: str, *roles: Role) -> Account:
    with app.state.perennial.engine.begin() as connection:
        created = create_user(connection, username=username, roles=frozenset(roles), actor="tests")
    assert created.password is not None
    return Account(created.user.user_id, username, created.password)


def sign_in(client: TestClient, account: Account) -> str:
    """Sign ``client`` in (its cookie jar keeps the session); returns the CSRF token."""
    response = client.post(
        "/v1/auth/login", json={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])
