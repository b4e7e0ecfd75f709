"""The dashboard shell in Chromium: sign in and out, lock-out, roles, language, no internet."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from perennial.web.assets import PLOTLY_URL
from tests.web.conftest import LOGIN_FAILURES, screenshot
from tests.web.live_server import Account, LiveServer

pytestmark = pytest.mark.integration


def _sign_in(page: Page, account: Account, *, password: str | None = None) -> None:
    page.fill("#username", account.username)
    page.fill("#password", account.password if password is None else password)
    page.click("form[action='/login'] button[type=submit]")


def _path(page: Page) -> str:
    return urlsplit(page.url).path


def test_a_stranger_is_sent_to_sign_in_and_comes_back_signed_in(
    page: Page, live_server: LiveServer
) -> None:
    page.goto("/admin")
    assert _path(page) == "/login"
    assert parse_qs(urlsplit(page.url).query) == {"next": ["/admin"]}
    expect(page.locator("h1")).to_have_text("登录 Perennial")
    screenshot(page, "login")
    _sign_in(page, live_server.accounts["admin"])
    assert _path(page) == "/admin"
    expect(page.get_by_test_id("current-user")).to_have_text("管理员小王")
    expect(page.locator("h1")).to_have_text("系统管理")


def test_the_start_page_is_the_board_after_sign_in(page: Page, live_server: LiveServer) -> None:
    page.goto("/")
    assert _path(page) == "/login"
    _sign_in(page, live_server.accounts["operator"])
    assert _path(page) == "/board"
    me = page.request.get("/v1/auth/me").json()
    assert (me["subject"], me["via"]) == ("user:operator", "session")


def test_a_wrong_password_is_refused_with_a_message(page: Page, live_server: LiveServer) -> None:
    page.goto("/login")
    _sign_in(page, live_server.accounts["agent"], password="not-the-password")
    assert _path(page) == "/login"
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    expect(page.locator("#username")).to_have_value("agent")
    screenshot(page, "login-wrong-password")
    page.goto("/login")
    _sign_in(page, live_server.accounts["agent"])
    assert _path(page) == "/board"


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    page: Page, live_server: LiveServer
) -> None:
    account = live_server.accounts["lockable"]
    page.goto("/login")
    for attempt in range(LOGIN_FAILURES):
        _sign_in(page, account, password=f"guess-{attempt}")
    expect(page.get_by_test_id("login-error")).to_contain_text("账户已锁定")
    _sign_in(page, account)
    expect(page.get_by_test_id("login-error")).to_contain_text("账户已锁定")
    assert _path(page) == "/login"
    screenshot(page, "login-locked")


def test_a_viewer_gets_the_403_page_for_admin_and_no_admin_link(
    page: Page, live_server: LiveServer
) -> None:
    page.goto("/login?next=/admin")
    _sign_in(page, live_server.accounts["viewer"])
    assert _path(page) == "/admin"
    error = page.get_by_test_id("error-page")
    expect(error).to_have_attribute("data-status", "403")
    expect(error.locator("h1")).to_have_text("无权访问")
    expect(page.locator("[data-nav='nav.admin']")).to_have_count(0)
    expect(page.locator("[data-nav='nav.board']")).to_have_text("看板")
    screenshot(page, "admin-forbidden-for-viewer")


def test_an_admin_sees_users_keys_and_the_audit_log(page: Page, live_server: LiveServer) -> None:
    page.goto("/login?next=/admin")
    _sign_in(page, live_server.accounts["admin"])
    users = page.get_by_test_id("users")
    for username in ("admin", "operator", "agent", "viewer"):
        expect(users.locator("td", has_text=username).first).to_be_visible()
    expect(users).to_contain_text("分析师小赵")
    expect(page.get_by_test_id("audit")).to_contain_text("login.succeeded")
    expect(page.locator("[data-nav='nav.admin']")).to_have_attribute("aria-current", "page")
    screenshot(page, "admin")


def test_sign_out_ends_the_session(page: Page, live_server: LiveServer) -> None:
    page.goto("/login?next=/admin")
    _sign_in(page, live_server.accounts["admin"])
    page.get_by_test_id("sign-out").click()
    assert _path(page) == "/login"
    expect(page.get_by_test_id("login-notice")).to_have_text("您已退出登录。")
    screenshot(page, "signed-out")
    page.goto("/admin")
    assert _path(page) == "/login"
    assert page.request.get("/v1/auth/me").status == 401


def test_the_language_switch_changes_every_label_and_is_remembered(
    page: Page, live_server: LiveServer
) -> None:
    page.goto("/login?next=/admin")
    expect(page.locator("label[for=username]")).to_have_text("用户名")
    page.click("[data-lang='en']")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Sign in to Perennial")
    expect(page.locator("label[for=username]")).to_have_text("Username")
    assert parse_qs(urlsplit(page.url).query) == {"next": ["/admin"]}
    _sign_in(page, live_server.accounts["admin"])
    expect(page.locator("h1")).to_have_text("Administration")
    expect(page.locator("[data-nav='nav.board']")).to_have_text("Board")
    expect(page.get_by_test_id("sign-out")).to_have_text("Sign out")
    screenshot(page, "admin-english")
    other_tab = page.context.new_page()
    other_tab.goto("/admin")
    expect(other_tab.locator("h1")).to_have_text("Administration")
    other_tab.click("[data-lang='zh-CN']")
    expect(other_tab.locator("h1")).to_have_text("系统管理")
    assert _path(other_tab) == "/admin"


def test_no_request_leaves_the_machine(
    page: Page, live_server: LiveServer, requested: list[str]
) -> None:
    page.goto("/login")
    _sign_in(page, live_server.accounts["admin"])
    for path in ("/admin", "/no-such-page", "/login"):
        page.goto(path)
    page.add_script_tag(url=PLOTLY_URL)
    assert page.evaluate("typeof Plotly") == "object"
    screenshot(page, "not-found")
    assert len(requested) >= 8
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in requested), requested
    assert any(url.endswith(".css?v=0.1.0") or "/static/app.css" in url for url in requested)


def test_pages_run_no_inline_script_and_report_no_policy_violation(
    page: Page, live_server: LiveServer
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto("/login")
    _sign_in(page, live_server.accounts["admin"])
    page.goto("/admin")
    assert page.evaluate("typeof window.perennial.fetchJson") == "function"
    me = page.evaluate("window.perennial.fetchJson('/v1/auth/me')")
    assert me["subject"] == "user:admin"
    assert not [p for p in problems if "Content Security Policy" in p or "Error" in p], problems


def test_plotly_draws_a_chart_under_the_content_security_policy(
    page: Page, live_server: LiveServer
) -> None:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto("/login")
    page.add_script_tag(url=PLOTLY_URL)
    page.evaluate(
        """() => {
            const target = document.createElement("div");
            target.id = "chart";
            document.querySelector("main").appendChild(target);
            return Plotly.newPlot(target, [{type: "bar", x: ["引入期", "成长期"], y: [3, 5]}]);
        }"""
    )
    expect(page.locator("#chart .main-svg").first).to_be_visible()
    assert page.locator("#chart .bars path").count() == 2
    assert not [v for v in violations if "Content Security Policy" in v], violations
