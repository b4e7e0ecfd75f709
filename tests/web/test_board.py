"""The lifecycle health board in Chromium: the API's numbers, every chart drawn, both languages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from perennial.web.formatting import format_count, format_money, format_percent
from perennial.web.kpi_cards import CARD_KEYS
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.conftest import screenshot
from tests.web.live_server import LiveServer

pytestmark = pytest.mark.integration

CHARTS = ("distribution", "flows", "rfm")


def _expected(key: str, card: dict[str, float | None], currency: str, language: str) -> str:
    value = card["value"]
    if value is None:
        return "—"
    if key == "revenue":
        return format_money(value, currency, language)
    if key == "repurchase_rate":
        return format_percent(value)
    return format_count(value, language)


def _wait_for_charts(page: Page) -> None:
    for name in CHARTS:
        expect(page.locator(f"#chart-{name}")).to_have_attribute("data-drawn", "true")


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_kpi_cards_show_the_apis_numbers_formatted_for_the_language(
    demo_page: Page, demo_server: LiveServer, language: str
) -> None:
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["operator"])
    if language != "zh-CN":
        demo_page.click(f"[data-lang='{language}']")
    expect(demo_page.locator("html")).to_have_attribute("lang", language)
    api = read_api(demo_server, "/v1/lifecycle/kpis")
    for key in CARD_KEYS:
        shown = demo_page.get_by_test_id(f"kpi-{key}-value")
        expect(shown).to_have_text(_expected(key, api[key], api["currency"], language))
    assert api["customers"]["value"] >= 250
    heading = {"zh-CN": "生命周期健康度看板", "en": "Lifecycle health board"}[language]
    expect(demo_page.locator("h1")).to_have_text(heading)
    _wait_for_charts(demo_page)
    screenshot(demo_page, f"board-{language}")
    assert watch.problems == [] and watch.dialogs == []


def test_every_chart_is_drawn_as_svg_with_the_apis_data(
    demo_page: Page, demo_server: LiveServer
) -> None:
    watch = Watch().attach(demo_page)
    sign_in(demo_page, demo_server.accounts["viewer"])
    _wait_for_charts(demo_page)
    for name in CHARTS:
        assert demo_page.locator(f"#chart-{name} svg.main-svg").count() >= 1
    distribution = read_api(demo_server, "/v1/lifecycle/distribution")
    areas = demo_page.locator("#chart-distribution .scatterlayer .trace")
    expect(areas).to_have_count(len(distribution["series"]))
    flows = read_api(demo_server, "/v1/lifecycle/flows")
    links = demo_page.locator("#chart-flows .sankey-link")
    expect(links).to_have_count(len(flows["flows"]))
    expect(demo_page.locator("#chart-rfm .hm")).to_have_count(1)
    movers = read_api(demo_server, "/v1/lifecycle/top-movers")["movers"]
    expect(demo_page.get_by_test_id("movers").locator("li")).to_have_count(len(movers))
    assert watch.problems == [], watch.problems


def test_choosing_two_days_redraws_the_flows_between_them(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["agent"])
    expect(demo_page.locator("#flow_start")).to_have_value("2025-12-01")
    expect(demo_page.locator("#flow_end")).to_have_value("2025-12-31")
    demo_page.fill("#flow_start", "2025-11-20")
    demo_page.fill("#flow_end", "2025-12-10")
    demo_page.select_option("#period", "7")
    with demo_page.expect_navigation():
        demo_page.click("[data-testid=board-form] button[type=submit]")
    query = parse_qs(urlsplit(demo_page.url).query)
    assert query == {"period": ["7"], "flow_start": ["2025-11-20"], "flow_end": ["2025-12-10"]}
    _wait_for_charts(demo_page)
    flows = read_api(demo_server, "/v1/lifecycle/flows", start="2025-11-20", end="2025-12-10")
    expect(demo_page.locator("#chart-flows .sankey-link")).to_have_count(len(flows["flows"]))
    expect(demo_page.locator("#chart-flows")).to_contain_text("2025年11月20日")
    api = read_api(demo_server, "/v1/lifecycle/kpis", period_days=7)
    customers = format_count(api["customers"]["value"], "zh-CN")
    expect(demo_page.get_by_test_id("kpi-customers-value")).to_have_text(customers)
    screenshot(demo_page, "board-chosen-days")


def test_a_day_outside_the_history_is_explained_on_the_page(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["viewer"], "/board?flow_start=2020-01-01")
    expect(demo_page.get_by_test_id("board-error")).to_contain_text(
        "2025年11月17日 至 2025年12月31日"
    )
    _wait_for_charts(demo_page)


def test_without_data_the_board_says_which_commands_build_it(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server.accounts["operator"])
    expect(page.get_by_test_id("no-data")).to_contain_text("perennial serving refresh")
    expect(page.get_by_test_id("no-data")).to_contain_text("perennial demo run")
    screenshot(page, "board-no-data-zh-CN")
    page.click("[data-lang='en']")
    expect(page.get_by_test_id("no-data")).to_contain_text("Nothing to show yet")
    screenshot(page, "board-no-data-en")


def test_a_viewer_reads_the_board_but_cannot_reach_admin(
    demo_page: Page, demo_server: LiveServer
) -> None:
    sign_in(demo_page, demo_server.accounts["viewer"])
    expect(demo_page.get_by_test_id("kpi-customers-value")).not_to_be_empty()
    expect(demo_page.locator("[data-nav='nav.admin']")).to_have_count(0)
    demo_page.goto("/admin")
    expect(demo_page.get_by_test_id("error-page")).to_have_attribute("data-status", "403")
