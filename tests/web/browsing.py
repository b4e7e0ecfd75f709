"""Browser test helpers: sign in through the form, read the API beside the page, catch scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from playwright.sync_api import Dialog, Page

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.store.operational import create_engine_for
from tests.web.live_server import Account, LiveServer


def sign_in(page: Page, account: Account, next_path: str = "/board") -> None:
    """Sign in through the login form and land on ``next_path``."""
    page.goto("/login?next=" + quote(next_path, safe=""))
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")


def read_api(server: LiveServer, path: str, role: Role = Role.VIEWER, **params: Any) -> Any:
    """``GET path`` on the server with a fresh API key holding ``role`` (what a program sees)."""
    engine = create_engine_for(server.settings)
    try:
        with engine.begin() as connection:
            issued = create_api_key(
                connection, name="browser test", roles=frozenset({role}), created_by="tests"
            )
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {issued.token}"}
    response = httpx.get(server.url + path, params=params, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Watch:
    """What a page did that it should not: dialogs (``alert``), errors, policy violations."""

    dialogs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Watch:
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on(
            "console",
            lambda message: (
                self.problems.append(message.text)
                if message.type == "error" or "Content Security Policy" in message.text
                else None
            ),
        )
        return self

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()
