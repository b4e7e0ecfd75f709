"""``/at-risk`` (风险预警) over HTTP: the API's rows, reasons in the viewer's language,
filters, paging, the CSV link and the 360's predictions card."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from perennial.access.roles import Role
from perennial.config import Settings
from perennial.service import create_app
from perennial.web.at_risk_page import PAGE_SIZE
from perennial.web.customers_page import customer_url
from perennial.web.i18n import LANGUAGE_COOKIE
from tests.api.predicted_store import PredictedStore, predicted_store
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.callers import api_headers, sign_in_as
from tests.web.conftest import screenshot
from tests.web.html_text import PageText
from tests.web.live_server import LiveServer, ServerThread


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory) -> PredictedStore:
    return predicted_store(tmp_path_factory)


@pytest.fixture
def settings(predicted: PredictedStore, tmp_path: Path) -> Settings:
    return predicted.settings.model_copy(update={"home": tmp_path / "home"})


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        sign_in_as(test_client, app, Role.AGENT)
        yield test_client


def _rows(page: PageText) -> list[str]:
    return [str(a["data-customer"]) for a in page.attributes if "data-customer" in a]


def _api(client: TestClient, app: FastAPI, **params: Any) -> dict[str, Any]:
    response = client.get(
        "/v1/predictions/at-risk", params={**params, "limit": PAGE_SIZE}, headers=api_headers(app)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_page_lists_the_apis_rows_in_order_with_chinese_reasons(
    client: TestClient, app: FastAPI
) -> None:
    response = client.get("/at-risk")
    assert response.status_code == 200
    page = PageText(response.text)
    api = _api(client, app, min_probability=0.5)
    assert _rows(page) == [item["customer_id"] for item in api["items"]]
    first = api["items"][0]
    assert first["reasons_zh"][0] in page.texts["reasons"][0]
    assert customer_url(first["customer_id"]) in page.links
    assert "风险预警" in response.text


def test_english_viewers_read_english_reasons(client: TestClient, app: FastAPI) -> None:
    client.cookies.set(LANGUAGE_COOKIE, "en")
    page = PageText(client.get("/at-risk", params={"min_probability": "0.9"}).text)
    api = _api(client, app, min_probability=0.9)
    assert page.texts["reasons"][0].startswith(api["items"][0]["reasons_en"][0])


def test_filters_and_the_next_page_follow_the_api(client: TestClient, app: FastAPI) -> None:
    params = {"min_probability": "0.3", "risk_band": "high", "sort": "churn_probability"}
    page = PageText(client.get("/at-risk", params=params).text)
    api = _api(client, app, **params)
    assert _rows(page) == [item["customer_id"] for item in api["items"]]
    if api["next_cursor"]:
        nexts = [link for link in page.links if "cursor=" in link]
        assert nexts
        cursor = parse_qs(urlparse(nexts[0]).query)["cursor"][0]
        assert cursor == api["next_cursor"]


def test_the_csv_link_asks_the_api_for_the_same_list(client: TestClient) -> None:
    params = {"min_probability": "0.7", "tier": "rest", "sort": "monetary"}
    page = PageText(client.get("/at-risk", params=params).text)
    link = next(link for link in page.links if "format=csv" in link)
    query = parse_qs(urlparse(link).query)
    assert urlparse(link).path == "/v1/predictions/at-risk"
    assert {k: v[0] for k, v in query.items()} == {**params, "format": "csv"}
    download = client.get(link)  # the session cookie is enough for a GET
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize(
    "params", [{"tier": "gold"}, {"risk_band": "severe"}, {"min_probability": "lots"}]
)
def test_a_filter_the_list_cannot_take_is_explained(
    client: TestClient, params: dict[str, str]
) -> None:
    response = client.get("/at-risk", params=params)
    assert response.status_code == 422
    ((name, value),) = params.items()
    assert f"{name}={value}" in PageText(response.text).text("at-risk-error")


def test_the_360_page_shows_the_churn_risk_and_its_reasons(
    client: TestClient, predicted: PredictedStore
) -> None:
    row = predicted.predictions[0]
    page = PageText(client.get(customer_url(row["customer_id"])).text)
    assert f"{row['churn_probability'] * 100:.0f}%" in page.text("churn-risk")
    assert page.texts["churn-reasons"][0].startswith(row["churn_reasons_zh"][0])


# --- in Chromium ---


@pytest.fixture(scope="module")
def live_server(
    predicted: PredictedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The real app over the store with known predictions (this module's ``page`` uses it)."""
    settings = predicted.settings.model_copy(
        update={"home": tmp_path_factory.mktemp("at-risk-live") / "home"}
    )
    thread = ServerThread(settings)
    thread.start()
    try:
        thread.wait_started()
        yield LiveServer(f"http://127.0.0.1:{thread.port}", settings, thread.accounts)
    finally:
        thread.stop()


@pytest.mark.integration
def test_chromium_lists_the_apis_at_risk_customers_and_opens_one(
    page: Page, live_server: LiveServer
) -> None:
    watch = Watch().attach(page)
    sign_in(page, live_server.accounts["agent"], "/at-risk")
    api = read_api(live_server, "/v1/predictions/at-risk", limit=50)
    rows = page.locator("[data-testid='at-risk-list'] tbody tr")
    expect(rows).to_have_count(len(api["items"]))
    first = api["items"][0]
    expect(rows.first).to_have_attribute("data-customer", first["customer_id"])
    expect(rows.first.get_by_test_id("reasons")).to_contain_text(first["reasons_zh"][0])
    expect(rows.first.get_by_test_id("list-phone")).to_contain_text("****")
    expect(page.locator("[data-nav='nav.at_risk']")).to_have_attribute("aria-current", "page")
    screenshot(page, "at-risk-zh-CN")
    page.click("[data-lang='en']")
    expect(rows.first.get_by_test_id("reasons")).to_contain_text(first["reasons_en"][1])
    screenshot(page, "at-risk-en")
    rows.first.get_by_test_id("customer-link").click()
    expect(page.get_by_test_id("churn-reasons")).to_contain_text(first["reasons_en"][1])
    screenshot(page, "customer-360-predictions")
    assert watch.problems == [] and watch.dialogs == []
