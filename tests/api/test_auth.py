"""Sign-in over the API: the session cookie, CSRF, lock-out, sign-out, and who am I."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key, revoke_api_key
from perennial.access.roles import Role
from perennial.access.sessions import SESSION_COOKIE
from perennial.config import Settings
from perennial.service import create_app
from tests.api.accounts import Account, add_account, sign_in
from tests.api.conftest import KeyFor

MAX_FAILURES = 3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", login_max_failures=MAX_FAILURES)


@pytest.fixture
def admin(app: FastAPI) -> Account:
    return add_account(app, "admin", Role.ADMIN)


@pytest.fixture
def agent(app: FastAPI) -> Account:
    return add_account(app, "agent.li", Role.AGENT)


def _login(client: TestClient, username: str, password: str) -> dict[str, Any]:
    response = client.post("/v1/auth/login", json={"username": username, "password": password})
    return {"status": response.status_code, "body": response.json(), "response": response}


def test_login_sets_an_httponly_lax_cookie_and_returns_the_csrf_token(
    client: TestClient, agent: Account
) -> None:
    response = client.post(
        "/v1/auth/login", json={"username": agent.username, "password": agent.password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "agent.li"
    assert body["roles"] == ["agent"]
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert agent.password not in response.text


def test_the_cookie_is_secure_when_the_settings_say_so(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "secure", secure_cookies=True))
    account = add_account(app, "secure.user", Role.VIEWER)
    with TestClient(app, base_url="https://testserver") as client:
        response = client.post(
            "/v1/auth/login", json={"username": account.username, "password": account.password}
        )
    assert "Secure" in response.headers["set-cookie"]


def test_me_tells_a_session_from_a_key(client: TestClient, agent: Account, key_for: KeyFor) -> None:
    assert client.get("/v1/auth/me").status_code == 401
    csrf = sign_in(client, agent)
    me = client.get("/v1/auth/me").json()
    assert me["subject"] == "user:agent.li"
    assert me["via"] == "session"
    assert me["user"]["user_id"] == agent.user_id
    assert me["csrf_token"] == csrf
    client.cookies.clear()
    by_key = client.get("/v1/auth/me", headers=key_for(Role.OPERATOR)).json()
    assert by_key["via"] == "api_key"
    assert by_key["user"] is None and by_key["csrf_token"] is None
    assert by_key["roles"] == ["operator"]


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, agent: Account
) -> None:
    wrong = _login(client, agent.username, "not the password")
    unknown = _login(client, "nobody", "not the password")
    assert wrong["status"] == unknown["status"] == 401
    assert wrong["body"] == unknown["body"]
    assert wrong["body"]["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong["response"].headers


def test_brute_force_locks_the_account_and_the_audit_log_shows_every_failure(
    client: TestClient, agent: Account, admin: Account
) -> None:
    answers = [_login(client, agent.username, f"guess-{i}") for i in range(MAX_FAILURES + 2)]
    assert [a["status"] for a in answers] == [401] * (MAX_FAILURES - 1) + [429] * 3
    assert answers[-1]["body"]["error"]["code"] == "locked_out"
    assert 0 < int(answers[-1]["response"].headers["retry-after"]) <= 15 * 60
    assert _login(client, agent.username, agent.password)["status"] == 429
    sign_in(client, admin)
    log = client.get("/v1/admin/audit", params={"subject_id": "agent.li"}).json()["items"]
    actions = [entry["action"] for entry in reversed(log)]
    assert actions == [
        "user.created",
        *["login.failed"] * MAX_FAILURES,
        "login.locked",
        "login.refused_locked",
        "login.refused_locked",
        "login.refused_locked",
    ]
    assert {entry["client"] for entry in log if entry["action"] == "login.failed"} == {"testclient"}


def test_a_cookie_without_the_csrf_header_cannot_change_anything(
    client: TestClient, admin: Account
) -> None:
    csrf = sign_in(client, admin)
    body = {"username": "new.user", "roles": ["viewer"]}
    missing = client.post("/v1/admin/users", json=body)
    wrong = client.post("/v1/admin/users", json=body, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert missing.status_code == wrong.status_code == 403
    assert missing.json()["error"]["code"] == wrong.json()["error"]["code"] == "csrf_failed"
    assert client.get("/v1/admin/users").status_code == 200  # reads need no token
    assert [u["username"] for u in client.get("/v1/admin/users").json()] == ["admin"]
    created = client.post("/v1/admin/users", json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201


def test_the_csrf_token_of_another_session_does_not_work(
    app: FastAPI, client: TestClient, admin: Account
) -> None:
    with TestClient(app) as other:
        other_csrf = sign_in(other, admin)
    sign_in(client, admin)
    response = client.post("/v1/auth/logout", headers={"X-CSRF-Token": other_csrf})
    assert response.status_code == 403


def test_an_api_key_needs_no_csrf_token(client: TestClient, key_for: KeyFor) -> None:
    body = {"username": "made.by.key", "roles": ["viewer"]}
    response = client.post("/v1/admin/users", json=body, headers=key_for(Role.ADMIN))
    assert response.status_code == 201


def test_sign_out_ends_the_session_for_good(client: TestClient, agent: Account) -> None:
    csrf = sign_in(client, agent)
    stolen = client.cookies[SESSION_COOKIE]
    assert client.post("/v1/auth/logout").status_code == 403  # no CSRF token
    response = client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert 'perennial_session=""' in response.headers["set-cookie"]
    assert client.get("/v1/auth/me").status_code == 401
    client.cookies.set(SESSION_COOKIE, stolen)
    assert client.get("/v1/auth/me").status_code == 401


def test_signing_out_with_a_key_is_a_clear_error(client: TestClient, key_for: KeyFor) -> None:
    response = client.post("/v1/auth/logout", headers=key_for(Role.VIEWER))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_session"


def test_a_disabled_users_open_session_is_rejected(
    app: FastAPI, client: TestClient, agent: Account, key_for: KeyFor
) -> None:
    sign_in(client, agent)
    assert client.get("/v1/auth/me").status_code == 200
    admin_key = key_for(Role.ADMIN)
    with TestClient(app) as admin_client:
        disabled = admin_client.post(f"/v1/admin/users/{agent.user_id}/disable", headers=admin_key)
    assert disabled.json()["disabled"] is True
    assert client.get("/v1/auth/me").status_code == 401
    assert _login(client, agent.username, agent.password)["status"] == 401


def test_expired_and_revoked_keys_are_refused(app: FastAPI, client: TestClient) -> None:
    with app.state.perennial.engine.begin() as connection:
        expired = create_api_key(
            connection,
            name="old",
            roles=frozenset({Role.ADMIN}),
            created_by="tests",
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        revoked = create_api_key(
            connection, name="gone", roles=frozenset({Role.ADMIN}), created_by="tests"
        )
        revoke_api_key(connection, revoked.key_id)
    for token in (expired.token, revoked.token):
        for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
            response = client.get("/v1/admin/users", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a", "password": "b", "remember": True}, "body.remember"),
        ({"username": "a" * 65, "password": "b"}, "body.username"),
        ({"username": "a", "password": "b" * 257}, "body.password"),
        ({"username": "", "password": "b"}, "body.username"),
        ({"username": "a"}, "body.password"),
        ({"username": ["a"], "password": "b"}, "body.username"),
    ],
)
def test_malformed_login_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_a_form_or_text_post_cannot_sign_in(client: TestClient, agent: Account) -> None:
    """A cross-site form can send text/plain or a form without a preflight: neither works."""
    as_text = client.post(
        "/v1/auth/login",
        content=f'{{"username": "{agent.username}", "password": "{agent.password}"}}',
        headers={"Content-Type": "text/plain"},
    )
    as_form = client.post(
        "/v1/auth/login", data={"username": agent.username, "password": agent.password}
    )
    assert as_text.status_code == as_form.status_code == 422
    assert SESSION_COOKIE not in client.cookies
    malformed = client.post(
        "/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
