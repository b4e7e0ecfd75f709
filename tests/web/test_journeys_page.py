"""``/journeys`` and ``/journeys/{name}``: journeys that really ran (``journey_seed.py``) shown
with the service's own numbers, the diagram one box per step, runs and sends paged and
filtered, the buttons only for operators, and in Chromium a pause through the button."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from html.parser import HTMLParser
from typing import get_args
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from perennial.access.roles import Role
from perennial.api.routes.journeys import StepOut
from perennial.config import Settings
from perennial.journeys.document import Step, Trigger
from perennial.journeys.graph import edges_of
from perennial.journeys.loading import parse_journey
from perennial.journeys.service import JourneyService
from perennial.service import create_app
from perennial.web import journeys_page
from perennial.web.i18n import CATALOGUE, LANGUAGE_COOKIE, translate
from perennial.web.journey_graph import BOX_WIDTH, COUNT_KEYS, draw_journey, step_layers
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import SegmentStore
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.callers import sign_in_as
from tests.web.conftest import PAGE, screenshot
from tests.web.html_text import PageText
from tests.web.journey_seed import (
    CALL_BACK,
    EDUCATION,
    REPLENISHMENT,
    STATUSES,
    WELCOME,
    WIN_BACK,
    seed_journeys,
)
from tests.web.live_server import LiveServer, ServerThread

segment_store = segments_conftest.segment_store


@pytest.fixture(scope="module")
def seeded(segment_store: SegmentStore, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One operational store with the journeys run, shared by this module's page tests
    (they only read it)."""
    return seed_journeys(segment_store, tmp_path_factory.mktemp("journeys-pages") / "home")


@pytest.fixture
def service(seeded: Settings) -> Iterator[JourneyService]:
    journeys = JourneyService(seeded)
    yield journeys
    journeys.operational.dispose()


@pytest.fixture
def app(seeded: Settings) -> FastAPI:
    return create_app(seeded)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False, headers=PAGE) as test_client:
        yield test_client


def _as(client: TestClient, app: FastAPI, role: Role) -> None:
    sign_in_as(client, app, role, f"{role.value}-{uuid4().hex[:8]}")


def _page(client: TestClient, path: str) -> PageText:
    response = client.get(path)
    assert response.status_code == 200, response.text
    page = PageText(response.text)
    assert page.inline_scripts == []
    return page


def _rows(page: PageText, test_id: str) -> list[dict[str, str | None]]:
    return [
        attributes for attributes in page.attributes if attributes.get("data-testid") == test_id
    ]


class _Boxes(HTMLParser):
    """The diagram's boxes: for each ``data-step``, its count values by key."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.boxes: dict[str, dict[str, int]] = {}
        self.types: dict[str, str] = {}
        self._step: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("data-testid") == "journey-step":
            self._step = str(values["data-step"])
            self.boxes[self._step] = {}
            self.types[self._step] = str(values["data-type"])
        elif tag == "tspan" and self._step is not None and values.get("data-count"):
            self.boxes[self._step][str(values["data-count"])] = int(str(values["data-value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self._step = None


def test_the_list_shows_each_current_journey_with_the_services_totals(
    client: TestClient, app: FastAPI, service: JourneyService
) -> None:
    _as(client, app, Role.VIEWER)
    page = _page(client, "/journeys")

    rows = {str(row["data-name"]): row for row in _rows(page, "journey-row")}
    assert set(rows) == {EDUCATION, WIN_BACK, CALL_BACK, WELCOME}  # archived ones hidden
    assert {name: row["data-status"] for name, row in rows.items()} == {
        name: status for name, status in STATUSES.items() if status != "archived"
    }
    order = list(rows)
    texts = {
        key: dict(zip(order, page.texts[f"journey-{key}"], strict=True))
        for key in ("status", "version", "trigger", "ongoing", "failed", "completed", "sent")
    }
    assert texts["status"] == {
        EDUCATION: "运行中",
        WIN_BACK: "运行中",
        CALL_BACK: "已暂停",
        WELCOME: "草稿",
    }
    assert texts["version"][WIN_BACK] == "v1" and texts["version"][WELCOME] == "草稿 v1"
    assert texts["trigger"][WIN_BACK] == "进入人群" and texts["trigger"][WELCOME] == "事件"
    totals = service.totals()
    for name in (EDUCATION, WIN_BACK, CALL_BACK):
        runs = totals[name]
        ongoing = runs.get("active", 0) + runs.get("waiting", 0)
        assert texts["ongoing"][name] == f"{ongoing:,}", name
        assert texts["failed"][name] == f"{runs.get('failed', 0):,}", name
        assert texts["completed"][name] == f"{runs.get('completed', 0):,}", name
        sent = sum(count.sent for count in service.steps(name).values())
        assert texts["sent"][name] == f"{sent:,}", name
    assert texts["failed"][WIN_BACK] != "0" and texts["sent"][EDUCATION] != "0"
    assert f"/journeys/{WIN_BACK}" in page.links
    nav = [a for a in page.attributes if a.get("data-nav") == "nav.journeys"]
    assert nav and nav[0].get("aria-current") == "page"


def test_the_archived_toggle_adds_archived_journeys(client: TestClient, app: FastAPI) -> None:
    _as(client, app, Role.AGENT)
    hidden = _page(client, "/journeys")
    assert hidden.text("archived-toggle") == "显示已归档"

    shown = _page(client, "/journeys?archived=true")

    rows = {str(row["data-name"]): row["data-status"] for row in _rows(shown, "journey-row")}
    assert rows[REPLENISHMENT] == "archived" and len(rows) == 5
    assert "已归档" in shown.texts["journey-status"]
    assert shown.text("archived-toggle") == "隐藏已归档"


def test_the_diagram_has_one_box_per_step_with_the_services_counts(
    client: TestClient, app: FastAPI, service: JourneyService
) -> None:
    _as(client, app, Role.VIEWER)
    response = client.get(f"/journeys/{WIN_BACK}")
    assert response.status_code == 200

    boxes = _Boxes(response.text)
    document = service.document(WIN_BACK)
    assert set(boxes.boxes) == set(document.steps)
    assert boxes.types == {name: step.type for name, step in document.steps.items()}
    counts = service.steps(WIN_BACK)
    for name, shown in boxes.boxes.items():
        counted = counts.get(name)
        expected = {key: getattr(counted, key) if counted else 0 for key in COUNT_KEYS}
        assert shown == expected, name
    assert boxes.boxes["wait_again"]["waiting"] > 0 and boxes.boxes["coupon"]["failed"] > 0
    page = PageText(response.text)
    edges = _rows(page, "journey-edge")
    assert len(edges) == sum(len(edges_of(step)) for step in document.steps.values())


def test_exits_are_labelled_yes_no_and_event_timeout(client: TestClient, app: FastAPI) -> None:
    _as(client, app, Role.OPERATOR)
    client.cookies.set(LANGUAGE_COOKIE, "en")

    def labels(name: str) -> dict[tuple[str | None, str | None], str]:
        page = PageText(client.get(f"/journeys/{name}").text)
        attributes = _rows(page, "journey-edge-label")
        texts = page.texts["journey-edge-label"]
        return {
            (a["data-from"], a["data-to"]): text for a, text in zip(attributes, texts, strict=True)
        }

    education = labels(EDUCATION)
    assert education[("which_group", "send_a")] == "yes"
    assert education[("which_group", "b_or_c")] == "no"
    assert education[("b_or_c", "send_c")] == "no"
    win_back = labels(WIN_BACK)
    assert win_back[("wait_return", "done")] == "order_placed"
    assert win_back[("wait_return", "coupon")] == "timeout 7d"
    assert ("monthly_report", "wait_return") not in win_back  # a plain next has no label


def test_runs_are_filtered_by_status_and_paged_by_the_apis_keyset(
    client: TestClient, app: FastAPI, service: JourneyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journeys_page, "PAGE_SIZE", 5)
    _as(client, app, Role.VIEWER)
    failed = [run.run_id for run in service.runs(WIN_BACK, status="failed", limit=1000)]
    assert len(failed) > 10

    seen: list[str] = []
    path: str | None = f"/journeys/{WIN_BACK}?status=failed"
    while path is not None:
        page = _page(client, path)
        rows = _rows(page, "journey-run")
        assert 0 < len(rows) <= 5 and {row["data-status"] for row in rows} == {"failed"}
        seen += [str(row["data-run"]) for row in rows]
        nexts = _rows(page, "runs-next")
        path = str(nexts[0]["href"]) if nexts else None
        assert len(seen) <= len(failed), "the pages repeat"
        if path is not None:
            assert parse_qs(urlsplit(path).query)["status"] == ["failed"]
    assert sorted(seen) == sorted(failed) and len(seen) == len(set(seen))

    waiting = _rows(_page(client, f"/journeys/{WIN_BACK}?status=waiting"), "journey-run")
    assert {row["data-status"] for row in waiting} == {"waiting"} and len(waiting) == 3
    assert "no-runs" in _page(client, f"/journeys/{WIN_BACK}?status=converted").texts


def test_sends_and_suppressions_show_their_reasons(
    client: TestClient, app: FastAPI, service: JourneyService
) -> None:
    _as(client, app, Role.VIEWER)
    page = _page(client, f"/journeys/{EDUCATION}?send_status=suppressed")

    rows = _rows(page, "journey-send")
    expected = service.sends(EDUCATION, status="suppressed", limit=1000)
    assert sorted(str(row["data-customer"]) for row in rows) == sorted(
        send.customer_id for send in expected
    )
    zh = CATALOGUE["zh-CN"]
    assert sorted(page.texts["journey-send-reason"]) == sorted(
        zh[f"journeys.reason.{send.reason}"] for send in expected
    )
    by_reason = {
        (step, reason): number
        for step, counts in service.steps(EDUCATION).items()
        for reason, number in counts.suppressed_by.items()
    }
    summary = {
        (row["data-step"], row["data-reason"]): int(str(row["data-count"]))
        for row in _rows(page, "journey-suppression")
    }
    assert summary == by_reason and by_reason
    for row, text in zip(
        _rows(page, "journey-suppression"), page.texts["journey-suppression"], strict=True
    ):
        reason = zh["journeys.reason." + str(row["data-reason"])]
        assert text == f"{row['data-step']}{reason}{row['data-count']}"


@pytest.mark.parametrize(
    ("name", "buttons"),
    [
        (EDUCATION, ["pause", "archive"]),
        (CALL_BACK, ["resume", "archive"]),
        (WELCOME, ["publish", "archive"]),
        (REPLENISHMENT, []),
    ],
)
def test_operators_get_the_moves_the_status_allows(
    client: TestClient, app: FastAPI, name: str, buttons: list[str]
) -> None:
    _as(client, app, Role.OPERATOR)
    response = client.get(f"/journeys/{name}")
    page = PageText(response.text)

    shown = [str(a["data-action"]) for a in page.attributes if a.get("data-action")]
    assert shown == buttons
    assert ("journeys.js" in response.text) == bool(buttons)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
def test_viewers_and_agents_see_everything_and_change_nothing(
    client: TestClient, app: FastAPI, role: Role
) -> None:
    _as(client, app, role)
    response = client.get(f"/journeys/{EDUCATION}")
    page = PageText(response.text)

    assert response.status_code == 200
    assert "journey-actions" not in page.texts and "journeys.js" not in response.text
    assert page.texts["journey-step"] and page.texts["journey-send"]


@pytest.mark.parametrize("name", ["no-such-journey", "Not A Name", "..%2Fsegments"])
def test_an_unknown_journey_gets_the_404_page(client: TestClient, app: FastAPI, name: str) -> None:
    _as(client, app, Role.VIEWER)
    response = client.get(f"/journeys/{name}")

    assert response.status_code == 404
    error = [a for a in PageText(response.text).attributes if a.get("data-testid") == "error-page"]
    assert error and error[0]["data-status"] == "404"


def test_a_stranger_is_sent_to_sign_in_first(client: TestClient) -> None:
    response = client.get(f"/journeys/{EDUCATION}")

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Fjourneys%2F{EDUCATION}"


def test_every_step_trigger_and_status_has_a_label_in_both_languages() -> None:
    steps = {arg.model_fields["type"].annotation for arg in get_args(get_args(Step)[0])}
    triggers = {arg.model_fields["type"].annotation for arg in get_args(get_args(Trigger)[0])}
    step_types = {value for literal in steps for value in get_args(literal)}
    trigger_types = {value for literal in triggers for value in get_args(literal)}
    assert "wait_for_event" in step_types and "segment_enter" in trigger_types
    keys: set[str] = {f"journeys.step.{kind}" for kind in step_types}
    keys |= {f"journeys.trigger.{kind}" for kind in trigger_types}
    keys |= {f"journeys.status.{s}" for s in ("draft", "active", "paused", "archived")}
    keys |= {f"journeys.run.{s}" for s in journeys_page.RUN_STATUSES}
    keys |= {f"journeys.send.{s}" for s in journeys_page.SEND_STATUSES}
    keys |= {f"journeys.count.{key}" for key in COUNT_KEYS}
    for language in ("zh-CN", "en"):
        assert keys <= set(CATALOGUE[language]), keys - set(CATALOGUE[language])


LOOP = """
journey: nudge-loop
trigger: {type: manual}
start: remind
steps:
  remind: {type: send, channel: email, message: {text: hi}, next: pick}
  pick:
    type: split
    variants: [{name: a, weight: 1, next: wait}, {name: b, weight: 3, next: done}]
  wait: {type: wait_for_event, event: login, timeout: 3d, on_event: done, on_timeout: remind}
  done: {type: exit}
"""


def test_the_diagram_lays_steps_out_by_depth_and_routes_splits_and_loops() -> None:
    journey = parse_journey(yaml.safe_load(LOOP), "test")
    counted = StepOut(
        step="remind",
        entered=7,
        waiting=0,
        sent=5,
        suppressed=2,
        failed=0,
        converted=1,
        suppressed_by={"no_opt_in": 2},
    )

    drawing = draw_journey(journey, {"remind": counted}, partial(translate, "zh-CN"))

    assert step_layers(journey) == [["remind"], ["pick"], ["wait", "done"]]
    boxes = {box.name: box for box in drawing.boxes}
    assert {cell.key: cell.value for cell in boxes["remind"].counts} == {
        "entered": 7,
        "waiting": 0,
        "sent": 5,
        "suppressed": 2,
        "converted": 1,
        "failed": 0,
    }
    assert {cell.value for cell in boxes["done"].counts} == {0}
    assert "no_opt_in 2" in boxes["remind"].description
    assert boxes["wait"].y == boxes["done"].y > boxes["pick"].y > boxes["remind"].y
    edges = {(edge.source, edge.target): edge for edge in drawing.edges}
    assert {pair: edge.direction for pair, edge in edges.items()} == {
        ("remind", "pick"): "down",
        ("pick", "wait"): "down",
        ("pick", "done"): "down",
        ("wait", "done"): "across",
        ("wait", "remind"): "back",
    }
    assert edges[("pick", "wait")].label == "a · 25%"
    assert edges[("pick", "done")].label == "b · 75%"
    assert edges[("wait", "done")].label == "发生 login"
    assert edges[("wait", "remind")].label == "超时 3d"
    assert edges[("remind", "pick")].label == ""
    right = max(box.x for box in drawing.boxes) + BOX_WIDTH
    assert drawing.width > right  # the loop's lane lies beyond every box
    lane = float(edges[("wait", "remind")].path.split("H")[1].split()[0])
    assert lane > right


# --- in Chromium ---


@pytest.fixture(scope="module")
def live_server(
    segment_store: SegmentStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The real app on its own seeded store (the browser test pauses a journey in it)."""
    settings = seed_journeys(segment_store, tmp_path_factory.mktemp("journeys-live") / "home")
    thread = ServerThread(settings)
    thread.start()
    try:
        thread.wait_started()
        yield LiveServer(f"http://127.0.0.1:{thread.port}", settings, thread.accounts)
    finally:
        thread.stop()


@pytest.mark.integration
def test_chromium_opens_a_journey_from_the_list_shows_the_apis_counts_and_pauses_it(
    page: Page, live_server: LiveServer
) -> None:
    watch = Watch().attach(page)
    sign_in(page, live_server.accounts["operator"], "/journeys")
    row = page.locator(f'[data-testid="journey-row"][data-name="{WIN_BACK}"]')
    expect(row.get_by_test_id("journey-status")).to_have_text("运行中")
    row.get_by_test_id("journey-link").click()
    expect(page.get_by_test_id("journey-name")).to_have_text(WIN_BACK)
    assert urlsplit(page.url).path == f"/journeys/{WIN_BACK}"

    document = read_api(live_server, f"/v1/journeys/{WIN_BACK}")["document"]
    counts = read_api(live_server, f"/v1/journeys/{WIN_BACK}/steps")
    boxes = page.locator('svg[data-testid="journey-graph"] [data-testid="journey-step"]')
    expect(boxes).to_have_count(len(document["steps"]))
    for name in document["steps"]:
        box = boxes.and_(page.locator(f'[data-step="{name}"]'))
        expect(box).to_have_count(1)
        drawn = box.bounding_box()
        assert drawn is not None and drawn["width"] > 100 and drawn["height"] > 50, name
    assert {row["step"] for row in counts} <= set(document["steps"])
    for counted in counts:
        box = boxes.and_(page.locator(f'[data-step="{counted["step"]}"]'))
        for key in COUNT_KEYS:
            expect(box.locator(f'[data-count="{key}"]')).to_have_text(f"{counted[key]:,}")
    assert any(row["waiting"] for row in counts) and any(row["failed"] for row in counts)
    screenshot(page, "journey-win-back")

    page.get_by_test_id("journey-pause").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("已暂停")
    expect(page.get_by_test_id("journey-resume")).to_be_visible()
    expect(page.get_by_test_id("journey-pause")).to_have_count(0)
    assert read_api(live_server, f"/v1/journeys/{WIN_BACK}")["status"] == "paused"
    listed = {j["name"]: j["status"] for j in read_api(live_server, "/v1/journeys")}
    assert listed[WIN_BACK] == "paused" and listed[EDUCATION] == "active"
    assert watch.problems == [] and watch.dialogs == []
