"""``/board`` over HTTP: the API's numbers and charts, the chosen days, bad input, no data."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.api.errors import ApiError
from perennial.api.serving import UNAVAILABLE_MESSAGE
from perennial.service import create_app
from perennial.web.formatting import format_count, format_money, format_percent
from perennial.web.i18n import LANGUAGE_COOKIE
from perennial.web.kpi_cards import CARD_KEYS
from tests.web.callers import api_headers, sign_in_as
from tests.web.conftest import PAGE
from tests.web.demo_home import WebDemo
from tests.web.html_text import PageText


def _api(client: TestClient, app: FastAPI, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=api_headers(app))
    assert response.status_code == 200, response.text
    return response.json()


def _board(client: TestClient, **params: str) -> PageText:
    response = client.get("/board", params=params)
    assert response.status_code == 200, response.text
    return PageText(response.text)


def _formatted(key: str, value: float | None, currency: str, language: str) -> str:
    if value is None:
        return "—"
    if key == "revenue":
        return format_money(value, currency, language)
    if key == "repurchase_rate":
        return format_percent(value)
    return format_count(value, language)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("period", ["30", "7", "90"])
def test_every_kpi_card_shows_the_apis_number_formatted_for_the_language(
    demo_client: TestClient, demo_app: FastAPI, language: str, period: str
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    demo_client.cookies.set(LANGUAGE_COOKIE, language)
    page = _board(demo_client, period=period)
    api = _api(demo_client, demo_app, "/v1/lifecycle/kpis", period_days=period)
    shown = {key: page.text(f"kpi-{key}-value") for key in CARD_KEYS}
    expected = {
        key: _formatted(key, api[key]["value"], api["currency"], language) for key in CARD_KEYS
    }
    assert shown == expected
    assert api["customers"]["value"] > 0 and api["revenue"]["value"] > 0


def test_the_charts_are_the_apis_distribution_flows_and_rfm_grid(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    figures = _board(demo_client).json_blocks
    assert set(figures) == {"chart-distribution-data", "chart-flows-data", "chart-rfm-data"}

    distribution = _api(demo_client, demo_app, "/v1/lifecycle/distribution")
    traces = figures["chart-distribution-data"]["data"]
    by_day = {trace["name"]: trace["y"] for trace in traces}
    assert len(by_day) == len(distribution["series"])
    for series in distribution["series"]:
        assert series["customers"] in by_day.values()
    assert traces[0]["x"] == distribution["days"]

    flows = _api(demo_client, demo_app, "/v1/lifecycle/flows")
    link = figures["chart-flows-data"]["data"][0]["link"]
    assert link["value"] == [flow["customers"] for flow in flows["flows"]]

    grid = _api(demo_client, demo_app, "/v1/lifecycle/rfm-grid")
    z = figures["chart-rfm-data"]["data"][0]["z"]
    assert sum(map(sum, z)) == sum(cell["customers"] for cell in grid["cells"])
    assert all(z[c["r"] - 1][c["f"] - 1] == c["customers"] for c in grid["cells"])


def test_flows_default_to_the_30_days_to_the_last_history_day(
    demo_client: TestClient, demo_app: FastAPI, demo_data: WebDemo
) -> None:
    sign_in_as(demo_client, demo_app, Role.AGENT)
    page = _board(demo_client)
    end = demo_data.demo.end
    inputs = {a.get("id"): a.get("value") for a in page.attributes if a.get("type") == "date"}
    assert inputs == {"flow_start": "2025-12-01", "flow_end": end.isoformat()}
    captions = page.json_blocks["chart-flows-data"]["layout"]["annotations"]
    assert [caption["text"] for caption in captions] == ["2025年12月1日", "2025年12月31日"]
    movers = _api(demo_client, demo_app, "/v1/lifecycle/top-movers")["movers"]
    assert len(page.texts["movers"]) == 1
    assert page.texts["movers"][0].count("→") == len(movers) > 0


def test_chosen_flow_days_give_the_apis_flows_between_them(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    days = {"flow_start": "2025-11-20", "flow_end": "2025-12-10"}
    page = _board(demo_client, **days)
    api = _api(
        demo_client, demo_app, "/v1/lifecycle/flows", start=days["flow_start"], end=days["flow_end"]
    )
    sankey = page.json_blocks["chart-flows-data"]
    assert sankey["data"][0]["link"]["value"] == [flow["customers"] for flow in api["flows"]]
    captions = [note["text"] for note in sankey["layout"]["annotations"]]
    assert captions == ["2025年11月20日", "2025年12月10日"]
    assert "board-error" not in page.texts


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "abc"}, "统计周期须为 1 到 366 天"),
        ({"period": "0"}, "统计周期须为 1 到 366 天"),
        ({"period": "367"}, "统计周期须为 1 到 366 天"),
        ({"period": "-5"}, "统计周期须为 1 到 366 天"),
        ({"flow_start": "2025-13-01"}, "日期格式应为 年-月-日"),
        ({"flow_start": "'; DROP TABLE meta; --"}, "日期格式应为 年-月-日"),
        ({"flow_start": "1999-01-01"}, "阶段历史范围内（2025年11月17日 至 2025年12月31日）"),
        ({"flow_end": "2030-01-01"}, "阶段历史范围内"),
        ({"flow_start": "2025-12-20", "flow_end": "2025-12-01"}, "结束日不早于起始日"),
    ],
)
def test_unusable_choices_are_explained_and_the_defaults_shown(
    demo_client: TestClient, demo_app: FastAPI, params: dict[str, str], message: str
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    page = _board(demo_client, **params)
    assert message in page.text("board-error")
    default = _api(demo_client, demo_app, "/v1/lifecycle/flows")
    link = page.json_blocks["chart-flows-data"]["data"][0]["link"]
    assert link["value"] == [flow["customers"] for flow in default["flows"]]
    assert page.text("kpi-customers-value")


def test_every_role_sees_the_board_and_strangers_are_sent_to_sign_in(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    stranger = demo_client.get("/board?period=7")
    assert stranger.status_code == 303
    assert stranger.headers["location"] == "/login?next=%2Fboard%3Fperiod%3D7"
    for role in Role:
        sign_in_as(demo_client, demo_app, role, username=f"board-{role.value}")
        assert demo_client.get("/board").status_code == 200


def test_the_board_speaks_english_with_english_stage_names_and_numbers(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    demo_client.cookies.set(LANGUAGE_COOKIE, "en")
    response = demo_client.get("/board")
    page = PageText(response.text)
    assert "Lifecycle health board" in response.text and "生命周期" not in response.text
    names = [trace["name"] for trace in page.json_blocks["chart-distribution-data"]["data"]]
    assert names[:5] == ["Introduction", "Growth", "Mature", "Dormant", "Churned"]
    assert page.text("kpi-repurchase_rate-change").endswith("pts")
    assert "Data day 31 Dec 2025" in page.text("board-meta")


def test_the_page_runs_no_inline_script_and_loads_plotly_from_the_app(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    response = demo_client.get("/board")
    page = PageText(response.text)
    assert page.inline_scripts == []
    sources = [a["src"] for a in page.attributes if a.get("src")]
    assert all(str(src).startswith(("/static/", "/vendor/plotly-")) for src in sources), sources
    assert len(page.json_blocks) == 3
    assert "script-src 'self'" in response.headers["content-security-policy"]


def _no_history_store(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    with sqlite3.connect(target) as connection:
        connection.execute("DELETE FROM meta WHERE key IN ('history_first', 'history_last')")
        connection.execute("DELETE FROM stage_daily")
    connection.close()
    return target


def test_without_stage_history_the_board_says_what_to_run_and_shows_the_rest(
    demo_data: WebDemo, tmp_path: Path
) -> None:
    store = _no_history_store(demo_data.serving, tmp_path / "serving.db")
    app = create_app(demo_data.settings(tmp_path / "home", serving_path=store))
    with TestClient(app, follow_redirects=False, headers=PAGE) as client:
        sign_in_as(client, app, Role.VIEWER)
        response = client.get("/board")
    assert response.status_code == 200
    page = PageText(response.text)
    assert "perennial lifecycle backfill" in page.text("no-history")
    assert set(page.json_blocks) == {"chart-rfm-data"}
    assert page.text("kpi-active-value") == "—"
    assert page.text("kpi-revenue-value").startswith("¥")


def test_without_a_serving_store_the_board_says_so_and_names_the_commands(
    demo_data: WebDemo, tmp_path: Path
) -> None:
    app = create_app(demo_data.settings(tmp_path / "home", serving_path=tmp_path / "none.db"))
    with TestClient(app, follow_redirects=False, headers=PAGE) as client:
        sign_in_as(client, app, Role.OPERATOR)
        pages = [client.get(path) for path in ("/board", "/customers", "/customers/C0000001")]
    for response in pages:
        assert response.status_code == 503
        text = PageText(response.text).text("no-data")
        assert "perennial demo run" in text and "perennial serving refresh" in text
        assert str(tmp_path) not in response.text  # no server path leaks


def test_a_damaged_serving_store_is_reported_like_a_missing_one(
    demo_data: WebDemo, tmp_path: Path
) -> None:
    damaged = tmp_path / "serving.db"
    damaged.write_bytes(b"not a database at all" * 100)
    app = create_app(demo_data.settings(tmp_path / "home", serving_path=damaged))
    with TestClient(app, follow_redirects=False, headers=PAGE) as client:
        sign_in_as(client, app, Role.OPERATOR)
        response = client.get("/board")
    assert response.status_code == 503
    assert "perennial serving refresh" in response.text


@pytest.mark.parametrize(
    ("module", "function", "path"),
    [
        ("perennial.web.board_page", "kpis", "/board"),
        ("perennial.web.board_page", "flows", "/board"),
        ("perennial.web.customers_page", "customer_list", "/customers"),
        ("perennial.web.customers_page", "customer_search", "/customers?q=x"),
        ("perennial.web.customer_page", "customer_360", "/customers/C0000001"),
    ],
)
def test_a_store_that_vanishes_while_a_page_reads_gives_the_no_data_page(
    demo_client: TestClient,
    demo_app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    function: str,
    path: str,
) -> None:
    def vanished(*_args: object, **_kwargs: object) -> None:
        raise ApiError(503, "serving_unavailable", UNAVAILABLE_MESSAGE)

    monkeypatch.setattr(f"{module}.{function}", vanished)
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    response = demo_client.get(path)
    assert response.status_code == 503
    assert "perennial serving refresh" in PageText(response.text).text("no-data")
