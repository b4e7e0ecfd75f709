"""Customer search and the filtered list in Chromium, in both languages, all on this machine."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from perennial.web.formatting import format_money
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.conftest import screenshot
from tests.web.demo_home import SCRIPT_CUSTOMER, SCRIPT_NAME
from tests.web.live_server import LiveServer

pytestmark = pytest.mark.integration


def _rows(page: Page) -> list[str]:
    return page.locator("[data-customer]").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.customer)"
    )


def test_a_name_search_lists_the_matches_and_opens_the_one_chosen(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["agent"], "/customers")
    demo_page.fill("#q", "孙")
    with demo_page.expect_navigation():
        demo_page.click("[data-testid=search-form] button[type=submit]")
    api = read_api(demo_server, "/v1/customers/search", q="孙")["items"]
    assert len(api) > 1
    assert _rows(demo_page) == [item["customer_id"] for item in api]
    expect(demo_page.locator("h2")).to_contain_text("“孙”的搜索结果")
    screenshot(demo_page, "search-results-zh-CN")
    second = demo_page.get_by_test_id("customer-link").nth(1)
    name = second.inner_text()
    second.click()
    expect(demo_page.get_by_test_id("customer-name")).to_have_text(name)
    assert unquote(urlsplit(demo_page.url).path) == f"/customers/{api[1]['customer_id']}"


def test_searching_a_hostile_name_finds_it_as_text(
    demo_page: Page, demo_server: LiveServer
) -> None:
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["operator"], "/customers")
    demo_page.fill("#q", SCRIPT_NAME)
    with demo_page.expect_navigation():
        demo_page.press("#q", "Enter")
    expect(demo_page.get_by_test_id("customer-name")).to_have_text(SCRIPT_NAME)
    assert unquote(urlsplit(demo_page.url).path) == f"/customers/{SCRIPT_CUSTOMER}"
    demo_page.goto("/customers?q=%3Cscript")
    expect(demo_page.get_by_test_id("customer-list")).to_contain_text(SCRIPT_NAME)
    assert watch.dialogs == []


def test_filters_narrow_the_list_and_the_next_page_keeps_them(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["viewer"], "/customers")
    demo_page.select_option("[data-testid=filter-stage]", "churned")
    demo_page.select_option("[data-testid=filter-sort]", "monetary")
    with demo_page.expect_navigation():
        demo_page.click("[data-testid=filter-form] button[type=submit]")
    api = read_api(demo_server, "/v1/customers", stage="churned", sort="monetary", limit=50)
    assert _rows(demo_page) == [item["customer_id"] for item in api["items"]]
    stages = demo_page.locator("[data-customer] .chip").all_inner_texts()
    assert set(stages) == {"流失期"}
    screenshot(demo_page, "customers-list-zh-CN")
    assert api["next_cursor"]
    with demo_page.expect_navigation():
        demo_page.get_by_test_id("next-page").click()
    query = parse_qs(urlsplit(demo_page.url).query)
    assert query["stage"] == ["churned"] and query["sort"] == ["monetary"]
    following = read_api(
        demo_server, "/v1/customers", stage="churned", sort="monetary", cursor=api["next_cursor"]
    )
    assert _rows(demo_page) == [item["customer_id"] for item in following["items"]]
    expect(demo_page.get_by_test_id("first-page")).to_be_visible()


def test_switching_to_english_changes_labels_and_number_formats(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["operator"], "/customers?sort=monetary")
    top = read_api(demo_server, "/v1/customers", sort="monetary", limit=1)["items"][0]
    spend = demo_page.locator("[data-customer] td.number").first
    expect(spend).to_have_text(format_money(top["monetary"], "CNY", "zh-CN"))
    assert "万" in spend.inner_text()
    demo_page.click("[data-lang='en']")
    expect(demo_page.locator("h1")).to_have_text("Customers")
    expect(demo_page.locator("label[for=q]")).to_have_text("Find a customer")
    expect(spend).to_have_text(format_money(top["monetary"], "CNY", "en"))
    assert spend.inner_text().endswith("K")
    assert parse_qs(urlsplit(demo_page.url).query) == {"sort": ["monetary"]}
    screenshot(demo_page, "customers-list-en")
    demo_page.fill("#q", "孙")
    with demo_page.expect_navigation():
        demo_page.press("#q", "Enter")
    screenshot(demo_page, "search-results-en")


def test_no_page_requests_anything_but_this_machine(
    demo_page: Page, demo_server: LiveServer, requested: list[str]
) -> None:
    sign_in(demo_page, demo_server.accounts["admin"])
    expect(demo_page.locator("#chart-rfm")).to_have_attribute("data-drawn", "true")
    for path in ("/customers", "/customers?q=孙", f"/customers/{SCRIPT_CUSTOMER}", "/admin"):
        demo_page.goto(path)
    assert any("/vendor/plotly-" in url for url in requested)
    assert any("/static/charts.js" in url for url in requested)
    assert {urlsplit(url).hostname for url in requested} == {"127.0.0.1"}
