"""The app in-process for page tests, and a real server plus Chromium for browser tests.

Browser tests drive Debian's chromium (``apt-get install chromium``; ``make
system-deps`` does it) through Playwright; ``playwright install`` is never used (it
downloads a browser). Every page a browser test opens is recorded, and a request to
anything but 127.0.0.1 fails the test: the dashboard must work with no internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.config import Settings
from perennial.service import create_app
from tests.web.demo_home import WebDemo, web_demo
from tests.web.live_server import LiveServer, ServerThread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PAGE = {"Accept": "text/html,application/xhtml+xml"}
"""What a browser sends when it navigates: error answers become pages."""
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
LOGIN_FAILURES = 3


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False, headers=PAGE) as test_client:
        yield test_client


def _serve(settings: Settings) -> Iterator[LiveServer]:
    thread = ServerThread(settings)
    thread.start()
    try:
        thread.wait_started()
        yield LiveServer(f"http://127.0.0.1:{thread.port}", settings, thread.accounts)
    finally:
        thread.stop()


@pytest.fixture
def demo_app(demo_data: WebDemo, tmp_path: Path) -> FastAPI:
    """The app in-process on the demo data, with a fresh operational store."""
    return create_app(demo_data.settings(tmp_path / "home", ingest_drain_seconds=0))


@pytest.fixture
def demo_client(demo_app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client of ``demo_app`` (asks for pages, follows no redirect)."""
    with TestClient(demo_app, follow_redirects=False, headers=PAGE) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app on uvicorn with admin, operator, agent and viewer users seeded."""
    home = tmp_path_factory.mktemp("live") / "home"
    yield from _serve(Settings(home=home, login_max_failures=LOGIN_FAILURES))


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> WebDemo:
    """The demo data (with hostile customers) the dashboard pages show: built once."""
    return web_demo(tmp_path_factory)


@pytest.fixture(scope="session")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory, demo_data: WebDemo
) -> Iterator[LiveServer]:
    """Like ``live_server``, on the demo data (with its own operational store)."""
    home = tmp_path_factory.mktemp("demo-live") / "home"
    yield from _serve(demo_data.settings(home, ingest_drain_seconds=0))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def requested() -> list[str]:
    """Every URL the test's pages requested (filled by the ``page`` fixture)."""
    return []


def _page_on(browser: Browser, url: str, requested: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=url, viewport={"width": 1366, "height": 800})
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
    foreign = [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]
    assert not foreign, f"requests left the machine: {foreign}"


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, requested: list[str]) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose every request must stay on 127.0.0.1."""
    yield from _page_on(browser, live_server.url, requested)


@pytest.fixture
def demo_page(browser: Browser, demo_server: LiveServer, requested: list[str]) -> Iterator[Page]:
    """Like ``page``, on the demo server."""
    yield from _page_on(browser, demo_server.url, requested)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
