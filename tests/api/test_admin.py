"""Administration over the API: admins only, secrets shown once, every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from tests.api.accounts import add_account, sign_in
from tests.api.conftest import KeyFor

ENDPOINTS = [
    ("GET", "/v1/admin/users", None),
    ("POST", "/v1/admin/users", {"username": "x.y", "roles": ["viewer"]}),
    ("POST", "/v1/admin/users/0123456789abcdef/disable", None),
    ("POST", "/v1/admin/users/0123456789abcdef/enable", None),
    ("PUT", "/v1/admin/users/0123456789abcdef/roles", {"roles": ["viewer"]}),
    ("GET", "/v1/admin/api-keys", None),
    ("POST", "/v1/admin/api-keys", {"name": "etl", "roles": ["operator"]}),
    ("DELETE", "/v1/admin/api-keys/abcdef012345", None),
    ("GET", "/v1/admin/audit", None),
]
INJECTIONS = ["<script>alert('x')</script>", "' OR 1=1; DROP TABLE users; --"]


@pytest.fixture
def admin(key_for: KeyFor) -> dict[str, str]:
    return key_for(Role.ADMIN)


def _call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AGENT, Role.VIEWER])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_admin_endpoint_refuses_other_roles(
    client: TestClient, key_for: KeyFor, role: Role, method: str, path: str, body: Any
) -> None:
    response = _call(client, method, path, body, key_for(role))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_admin_endpoint_needs_a_caller(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    assert _call(client, method, path, body, {}).status_code == 401


def test_a_viewer_signed_in_on_the_web_is_refused_too(app: FastAPI, client: TestClient) -> None:
    viewer = add_account(app, "viewer.zhao", Role.VIEWER)
    csrf = sign_in(client, viewer)
    assert client.get("/v1/admin/users").status_code == 403
    body = {"username": "sneaky", "roles": ["admin"]}
    response = client.post("/v1/admin/users", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 403


def test_a_created_user_sees_their_password_once_and_can_sign_in(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"username": "qian", "display_name": "钱经理", "roles": ["operator", "agent"]}
    created = client.post("/v1/admin/users", json=body, headers=admin)
    assert created.status_code == 201
    password = created.json()["password"]
    assert created.json()["user"]["roles"] == ["agent", "operator"]
    listed = client.get("/v1/admin/users", headers=admin)
    assert password not in listed.text and "argon2" not in listed.text
    assert [u["display_name"] for u in listed.json()] == ["钱经理"]
    login = client.post("/v1/auth/login", json={"username": "qian", "password": password})
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "a", "roles": ["viewer"], "is_admin": True}, 422, "body.is_admin"),
        ({"username": "a", "roles": ["boss"]}, 422, "body.roles.0"),
        ({"username": "a", "roles": []}, 422, "body.roles"),
        ({"username": "a" * 65, "roles": ["viewer"]}, 422, "body.username"),
        (
            {"username": "a", "display_name": "d" * 129, "roles": ["viewer"]},
            422,
            "body.display_name",
        ),
        (
            {"username": "a", "roles": ["viewer"], "password": "chosen-by-admin"},
            422,
            "body.password",
        ),
        ({"username": " a", "roles": ["viewer"]}, 422, None),
        ({"username": "a\u0000b", "roles": ["viewer"]}, 422, None),
    ],
)
def test_bad_user_bodies_are_refused_with_the_field(
    client: TestClient, admin: dict[str, str], body: Any, status: int, field: str | None
) -> None:
    response = client.post("/v1/admin/users", json=body, headers=admin)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert client.get("/v1/admin/users", headers=admin).json() == []


def test_a_taken_username_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    body = {"username": "Dup", "roles": ["viewer"]}
    assert client.post("/v1/admin/users", json=body, headers=admin).status_code == 201
    again = client.post("/v1/admin/users", json={**body, "username": "dup"}, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_stored_verbatim_and_rendered_escaped(
    app: FastAPI, client: TestClient, admin: dict[str, str], text: str
) -> None:
    body = {"username": text[:64], "display_name": text, "roles": ["viewer"]}
    assert client.post("/v1/admin/users", json=body, headers=admin).status_code == 201
    (stored,) = client.get("/v1/admin/users", headers=admin).json()
    assert (stored["username"], stored["display_name"]) == (text[:64], text)
    web_admin = add_account(app, "web.admin", Role.ADMIN)
    sign_in(client, web_admin)
    page = client.get("/admin", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    if "<" in text:
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    else:
        assert "&#39; OR 1=1; DROP TABLE users; --" in page.text


def test_disable_enable_and_roles_by_user_id(
    app: FastAPI, client: TestClient, admin: dict[str, str]
) -> None:
    account = add_account(app, "zhou", Role.AGENT)
    base = f"/v1/admin/users/{account.user_id}"
    assert client.post(f"{base}/disable", headers=admin).json()["disabled"] is True
    login = {"username": "zhou", "password": account.password}
    assert client.post("/v1/auth/login", json=login).status_code == 401
    assert client.post(f"{base}/enable", headers=admin).json()["disabled"] is False
    assert client.post("/v1/auth/login", json=login).status_code == 200
    changed = client.put(f"{base}/roles", json={"roles": ["viewer"]}, headers=admin)
    assert changed.json()["roles"] == ["viewer"]
    actions = [
        e["action"]
        for e in client.get("/v1/admin/audit", params={"subject_id": "zhou"}, headers=admin).json()[
            "items"
        ]
    ]
    assert actions[0] == "user.roles_changed"
    assert {"user.disabled", "user.enabled", "user.created"} <= set(actions)


@pytest.mark.parametrize("user_id", ["0123456789abcdef", "..", "%2e%2e%2fetc", "x" * 33])
def test_unknown_or_malformed_user_ids_are_not_found(
    client: TestClient, admin: dict[str, str], user_id: str
) -> None:
    response = client.post(f"/v1/admin/users/{user_id}/disable", headers=admin)
    assert response.status_code in (404, 422)
    assert "error" in response.json()


def test_the_last_admin_cannot_lock_everyone_out(app: FastAPI, client: TestClient) -> None:
    only = add_account(app, "only.admin", Role.ADMIN)
    csrf = sign_in(client, only)
    headers = {"X-CSRF-Token": csrf}
    response = client.post(f"/v1/admin/users/{only.user_id}/disable", headers=headers)
    assert response.status_code == 409
    demoted = client.put(
        f"/v1/admin/users/{only.user_id}/roles", json={"roles": ["viewer"]}, headers=headers
    )
    assert demoted.status_code == 409
    assert client.get("/v1/auth/me").json()["roles"] == ["admin"]


def test_an_issued_key_is_shown_once_works_and_stops_when_revoked(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"name": "nightly ETL", "roles": ["operator", "agent"], "expires_days": 30}
    issued = client.post("/v1/admin/api-keys", json=body, headers=admin)
    assert issued.status_code == 201
    token, key = issued.json()["token"], issued.json()["key"]
    assert key["status"] == "active" and key["created_by"].startswith("key:")
    expires = datetime.fromisoformat(key["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["roles"] == ["agent", "operator"]
    listed = client.get("/v1/admin/api-keys", headers=admin)
    assert token not in listed.text
    revoked = client.delete(f"/v1/admin/api-keys/{key['key_id']}", headers=admin)
    assert revoked.json()["status"] == "revoked"
    assert client.get("/v1/auth/me", headers={"X-API-Key": token}).status_code == 401
    assert client.delete(f"/v1/admin/api-keys/{key['key_id']}", headers=admin).status_code == 404
    log = client.get("/v1/admin/audit", params={"subject_type": "api_key"}, headers=admin)
    assert [e["action"] for e in log.json()["items"]] == ["api_key.revoked", "api_key.created"]


def test_an_expired_key_is_listed_as_expired(
    app: FastAPI, client: TestClient, admin: dict[str, str]
) -> None:
    with app.state.perennial.engine.begin() as connection:
        create_api_key(
            connection,
            name="old",
            roles=frozenset({Role.VIEWER}),
            created_by="tests",
            expires_at=datetime.now(UTC) - timedelta(days=1),
        )
    statuses = {
        k["name"]: k["status"] for k in client.get("/v1/admin/api-keys", headers=admin).json()
    }
    assert statuses["old"] == "expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "k", "roles": ["viewer"], "expires_days": 0}, "body.expires_days"),
        ({"name": "k", "roles": ["viewer"], "expires_days": 3651}, "body.expires_days"),
        ({"name": "k" * 129, "roles": ["viewer"]}, "body.name"),
        ({"name": "k", "roles": []}, "body.roles"),
        ({"name": "k", "roles": ["viewer"], "scopes": ["*"]}, "body.scopes"),
        ({"name": "   ", "roles": ["viewer"]}, "body.name"),
    ],
)
def test_bad_key_bodies_are_refused_with_the_field(
    client: TestClient, admin: dict[str, str], body: Any, field: str
) -> None:
    response = client.post("/v1/admin/api-keys", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_the_audit_log_filters_and_pages_without_gaps_or_repeats(
    app: FastAPI, client: TestClient, admin: dict[str, str]
) -> None:
    for index in range(7):
        add_account(app, f"user{index}", Role.VIEWER)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"action": "user.created", "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/admin/audit", params=params, headers=admin).json()
        seen += [entry["audit_id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)
    by_actor = client.get("/v1/admin/audit", params={"actor": "tests"}, headers=admin).json()
    assert len(by_actor["items"]) == 7
    nobody = client.get("/v1/admin/audit", params={"actor": "nobody"}, headers=admin).json()
    assert nobody == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
        ({"cursor": "WyJ4Il0"}, 400, "cursor"),  # ["x"]: a list, but not an id
        ({"limit": 0}, 422, "query.limit"),
        ({"limit": 201}, 422, "query.limit"),
        ({"actor": "a" * 161}, 422, "query.actor"),
    ],
)
def test_bad_audit_queries_are_refused(
    client: TestClient, admin: dict[str, str], params: Any, status: int, field: str
) -> None:
    response = client.get("/v1/admin/audit", params=params, headers=admin)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
