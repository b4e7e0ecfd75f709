"""The page shell over HTTP: redirects, the login form, error pages, headers, assets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.access.sessions import SESSION_COOKIE
from perennial.config import Settings
from perennial.web.assets import PLOTLY_JS, PLOTLY_URL
from perennial.web.i18n import LANGUAGE_COOKIE
from perennial.web.login import LOGIN_CSRF_COOKIE
from perennial.web.page_auth import safe_next
from tests.api.accounts import Account, add_account, sign_in

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", login_max_failures=2)


@pytest.fixture
def admin(app: FastAPI) -> Account:
    return add_account(app, "admin", Role.ADMIN)


@pytest.fixture
def viewer(app: FastAPI) -> Account:
    return add_account(app, "viewer", Role.VIEWER)


def _form_token(client: TestClient, next_path: str = "/") -> str:
    page = client.get("/login", params={"next": next_path})
    match = CSRF_FIELD.search(page.text)
    assert match is not None
    return match.group(1)


def _submit(client: TestClient, username: str, password: str, next_path: str = "/") -> Any:
    token = _form_token(client, next_path)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_path},
    )


def _sign_in(client: TestClient, account: Account, next_path: str = "/") -> str:
    response = _submit(client, account.username, account.password, next_path)
    assert response.status_code == 303
    return str(response.headers["location"])


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = values.get("src") is None
        for name in ("src", "href", "action"):
            value = values.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        for name, value in attrs:
            if name.startswith("on"):
                self.inline.append(f"{name}={value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_pages_redirect_strangers_to_sign_in_with_the_way_back(client: TestClient) -> None:
    response = client.get("/admin?tab=keys")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/admin?tab=keys"]}
    assert client.get("/").headers["location"] == "/login?next=/board"


def test_signing_in_through_the_form_follows_next_and_sets_the_session(
    client: TestClient, admin: Account
) -> None:
    assert _sign_in(client, admin, "/admin?tab=keys") == "/admin?tab=keys"
    assert SESSION_COOKIE in client.cookies
    assert client.get("/admin").status_code == 200
    assert client.get("/").headers["location"] == "/board"
    assert client.get("/login?next=/admin").headers["location"] == "/admin"


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "evil.example",
        "/" + "a" * 3000,
    ],
)
def test_next_never_leads_off_the_site(client: TestClient, admin: Account, next_path: str) -> None:
    assert safe_next(next_path) == "/"
    assert _sign_in(client, admin, next_path) == "/"


def test_local_paths_are_kept_as_next() -> None:
    assert safe_next("/admin?tab=keys&x=%2F%2Fevil") == "/admin?tab=keys&x=%2F%2Fevil"
    assert safe_next(None) == "/"


def test_a_login_form_without_its_double_submit_token_is_refused(
    client: TestClient, admin: Account
) -> None:
    form = {"username": "admin", "password": admin.password, "next": "/admin"}
    missing = client.post("/login", data=form)
    _form_token(client)
    forged = client.post("/login", data={**form, "csrf_token": "forged"})
    assert missing.status_code == forged.status_code == 400
    assert SESSION_COOKIE not in client.cookies
    assert "页面已过期" in forged.text


def test_the_login_cookie_is_strict_and_scoped_to_the_form(client: TestClient) -> None:
    cookie = client.get("/login").headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_CSRF_COOKIE}=")
    assert "SameSite=strict" in cookie and "Path=/login" in cookie and "HttpOnly" in cookie


def test_failures_show_one_message_and_then_the_lock_out(
    client: TestClient, admin: Account
) -> None:
    unknown = _submit(client, "nobody", "guess")
    wrong = _submit(client, "admin", "guess")
    assert unknown.status_code == wrong.status_code == 401
    assert "用户名或密码错误" in unknown.text and "用户名或密码错误" in wrong.text
    locked = _submit(client, "admin", "guess again")
    assert locked.status_code == 429
    assert "账户已锁定" in locked.text
    assert _submit(client, "admin", admin.password).status_code == 429


def test_a_typed_username_is_shown_back_escaped(client: TestClient) -> None:
    typed = '"><script>alert(1)</script>'
    page = _submit(client, typed, "guess")
    assert "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_sign_out_needs_the_sessions_token_and_ends_the_session(
    client: TestClient, admin: Account
) -> None:
    _sign_in(client, admin)
    token = CSRF_FIELD.search(client.get("/admin").text)
    assert token is not None
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/admin").status_code == 200
    response = client.post("/logout", data={"csrf_token": token.group(1)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?signed_out=1"
    assert client.get("/admin").status_code == 303
    assert client.get("/v1/auth/me").status_code == 401


def test_a_viewer_gets_the_403_page_and_a_missing_page_the_404_page(
    client: TestClient, viewer: Account
) -> None:
    _sign_in(client, viewer)
    forbidden = client.get("/admin")
    missing = client.get("/no/such/page")
    assert forbidden.status_code == 403 and "无权访问" in forbidden.text
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert 'data-nav="nav.admin"' not in forbidden.text
    assert "分析" not in forbidden.text  # nothing of the admin page leaks


def test_programs_still_get_the_json_error_body(app: FastAPI) -> None:
    with TestClient(app) as api_client:
        response = api_client.get("/no/such/page")
        api_path = api_client.get("/v1/nothing", headers={"Accept": "text/html"})
    assert response.json()["error"]["code"] == "not_found"
    assert api_path.json()["error"]["code"] == "not_found"


def test_the_language_switch_sets_a_cookie_and_goes_back(client: TestClient) -> None:
    response = client.get("/lang/en", params={"next": "/login?next=/admin"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin"
    assert f"{LANGUAGE_COOKIE}=en" in response.headers["set-cookie"]
    page = client.get("/login")
    assert '<html lang="en">' in page.text and "Sign in to Perennial" in page.text
    ignored = client.get("/lang/xx", params={"next": "https://evil.example"})
    assert ignored.headers["location"] == "/"
    assert "set-cookie" not in ignored.headers


@pytest.mark.parametrize("path", ["/login", "/admin", "/no-such-page", "/static/app.css"])
def test_every_page_carries_the_security_headers(
    client: TestClient, admin: Account, path: str
) -> None:
    _sign_in(client, admin)
    headers = client.get(path).headers
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert (
        "unsafe-eval" not in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"


def test_pages_are_not_cached_and_hold_no_inline_script_or_foreign_url(
    client: TestClient, admin: Account
) -> None:
    pages = [client.get("/login")]
    _sign_in(client, admin)
    pages += [client.get("/admin"), client.get("/missing")]
    for page in pages:
        assert page.headers["cache-control"] == "no-store"
        scripts = _Scripts()
        scripts.feed(page.text)
        assert scripts.inline == [] and scripts.external == []
        assert 'src="/static/app.js' in page.text


def test_plotly_is_served_from_the_installed_package_with_a_long_cache(
    client: TestClient,
) -> None:
    response = client.get(PLOTLY_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == PLOTLY_JS.read_bytes()
    assert not list((Path(__file__).parents[2] / "src").rglob("plotly*.js"))  # not copied


@pytest.mark.parametrize(
    "path", ["/static/../config.py", "/static/%2e%2e/config.py", "/static/nope.js"]
)
def test_static_files_stay_inside_their_folder(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_docs_page_still_works_without_the_page_policy(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers


def test_signing_in_again_replaces_the_browsers_old_session(
    client: TestClient, admin: Account
) -> None:
    token = _form_token(client)  # the form was open in one tab ...
    sign_in(client, admin)  # ... while another tab signed in
    old = client.cookies[SESSION_COOKIE]
    form = {"username": "admin", "password": admin.password, "csrf_token": token, "next": "/"}
    assert client.post("/login", data=form).status_code == 303
    new = client.cookies[SESSION_COOKIE]
    assert new != old
    assert client.get("/v1/auth/me").status_code == 200
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, old)
    assert client.get("/v1/auth/me").status_code == 401
