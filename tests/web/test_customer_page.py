"""The customer 360 in Chromium: opened from the list and from search, masking per role, the
timeline's "more", hostile data shown as text, both languages."""

from __future__ import annotations

import sqlite3
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from perennial.access.masking import mask_email, mask_phone
from perennial.web.customers_page import customer_url
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.conftest import screenshot
from tests.web.demo_home import (
    HOSTILE_ATTRIBUTE,
    HOSTILE_QUERY,
    HOSTILE_REGION,
    SCRIPT_CUSTOMER,
    SCRIPT_NAME,
    SQL_CUSTOMER,
    SQL_NAME,
    WebDemo,
)
from tests.web.live_server import LiveServer

pytestmark = pytest.mark.integration


def _busiest(demo_data: WebDemo) -> tuple[str, str, str]:
    with sqlite3.connect(demo_data.serving) as connection:
        row = connection.execute(
            "SELECT c.customer_id, c.phone, c.email FROM customers c JOIN timeline t "
            "USING (customer_id) WHERE c.phone IS NOT NULL AND c.email IS NOT NULL "
            "GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
    connection.close()
    return str(row[0]), str(row[1]), str(row[2])


def _path(page: Page) -> str:
    return unquote(urlsplit(page.url).path)


def test_a_customer_opened_from_the_list_shows_their_360_in_both_languages(
    demo_page: Page, demo_server: LiveServer
) -> None:
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["operator"], "/customers?sort=monetary")
    first = demo_page.get_by_test_id("customer-link").first
    name = first.inner_text()
    first.click()
    expect(demo_page.get_by_test_id("customer-name")).to_have_text(name)
    customer_id = demo_page.get_by_test_id("customer-id").inner_text()
    assert _path(demo_page) == f"/customers/{customer_id}"
    api = read_api(demo_server, customer_url(customer_id).replace("/customers", "/v1/customers"))
    expect(demo_page.get_by_test_id("customer-stage")).to_have_text(api["stage"]["label_zh"])
    expect(demo_page.get_by_test_id("customer-tier")).to_have_text(api["value_tier"]["label_zh"])
    expect(demo_page.locator("#chart-stages .main-svg").first).to_be_attached()
    screenshot(demo_page, "customer-360-zh-CN")
    demo_page.click("[data-lang='en']")
    expect(demo_page.get_by_test_id("customer-stage")).to_have_text(api["stage"]["label_en"])
    expect(demo_page.get_by_test_id("key-facts")).to_contain_text("Total spend")
    screenshot(demo_page, "customer-360-en")
    assert watch.problems == [] and watch.dialogs == []


def test_a_customer_found_by_phone_opens_at_once(
    demo_page: Page, demo_server: LiveServer, demo_data: WebDemo
) -> None:
    customer_id, phone, _ = _busiest(demo_data)
    sign_in(demo_page, demo_server.accounts["agent"], "/customers")
    national = phone.removeprefix("+86")
    demo_page.fill("#q", f"{national[:3]} {national[3:7]} {national[7:]}")
    with demo_page.expect_navigation():
        demo_page.press("#q", "Enter")
    assert _path(demo_page) == f"/customers/{customer_id}"
    expect(demo_page.get_by_test_id("customer-phone")).to_have_text(mask_phone(phone))


def test_an_agent_sees_masked_contacts_where_an_operator_sees_them_whole(
    browser: Browser, demo_server: LiveServer, demo_data: WebDemo
) -> None:
    customer_id, phone, email = _busiest(demo_data)
    shown = {}
    requested: list[str] = []
    for role in ("agent", "operator"):
        context = browser.new_context(
            base_url=demo_server.url, viewport={"width": 1366, "height": 800}
        )
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        try:
            sign_in(page, demo_server.accounts[role], customer_url(customer_id))
            shown[role] = (
                page.get_by_test_id("customer-phone").inner_text(),
                page.get_by_test_id("customer-email").inner_text(),
                page.get_by_test_id("identities").inner_text(),
            )
            screenshot(page, f"customer-360-as-{role}")
        finally:
            context.close()
    assert shown["agent"][:2] == (mask_phone(phone), mask_email(email))
    assert phone not in shown["agent"][2] and email not in shown["agent"][2]
    assert shown["operator"][:2] == (phone, email)
    assert phone in shown["operator"][2]
    assert {urlsplit(url).hostname for url in requested} == {"127.0.0.1"}


def test_more_appends_the_next_timeline_items_in_place(
    demo_page: Page, demo_server: LiveServer, demo_data: WebDemo
) -> None:
    customer_id, _, _ = _busiest(demo_data)
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["viewer"], customer_url(customer_id))
    items = demo_page.locator("[data-timeline-item]")
    expect(items).to_have_count(20)
    before = demo_page.url
    first_times = items.locator("time").evaluate_all("(ts) => ts.map((t) => t.dateTime)")
    demo_page.get_by_test_id("timeline-more").click()
    expect(items).to_have_count(40)
    assert demo_page.url == before  # appended, not a new page
    times = items.locator("time").evaluate_all("(ts) => ts.map((t) => t.dateTime)")
    assert times[:20] == first_times and times == sorted(times, reverse=True)
    assert len(set(times)) > 20
    assert watch.problems == []


def test_hostile_text_in_a_customer_is_shown_and_never_run(
    demo_page: Page, demo_server: LiveServer
) -> None:
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["operator"], customer_url(SCRIPT_CUSTOMER))
    expect(demo_page.get_by_test_id("customer-name")).to_have_text(SCRIPT_NAME)
    expect(demo_page.get_by_test_id("details")).to_contain_text(HOSTILE_REGION)
    expect(demo_page.get_by_test_id("details")).to_contain_text(HOSTILE_ATTRIBUTE)
    expect(demo_page.get_by_test_id("timeline")).to_contain_text(HOSTILE_QUERY)
    assert demo_page.locator("main script:not([src]):not([type='application/json'])").count() == 0
    assert demo_page.locator("main img, main svg[onload]").count() == 0
    screenshot(demo_page, "customer-hostile")
    demo_page.goto(customer_url(SQL_CUSTOMER))
    expect(demo_page.get_by_test_id("customer-name")).to_have_text(SQL_NAME)
    assert watch.dialogs == [], watch.dialogs
    assert watch.problems == [], watch.problems


def test_an_unknown_customer_gets_the_friendly_page(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["agent"], "/customers/NO-SUCH-ONE")
    expect(demo_page.get_by_test_id("error-page")).to_have_attribute("data-status", "404")
    expect(demo_page.get_by_test_id("missing-text")).to_contain_text("NO-SUCH-ONE")
    screenshot(demo_page, "customer-not-found-zh-CN")
    demo_page.click("[data-lang='en']")
    expect(demo_page.locator("h1")).to_have_text("Customer not found")
    screenshot(demo_page, "customer-not-found-en")
