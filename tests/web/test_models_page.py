"""``/models``: the promoted churn model's numbers as the API gives them, its calibration chart
drawn in Chromium, the versions, and what to run when there is no model yet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from perennial.access.roles import Role
from perennial.config import Settings
from perennial.models.churn_model import ChurnModel
from perennial.models.registry import ModelRegistry, save_churn_model
from perennial.web.formatting import format_count
from perennial.web.i18n import LANGUAGE_COOKIE
from tests.models.demo_store import trained_demo_model
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.callers import api_headers, sign_in_as
from tests.web.conftest import screenshot
from tests.web.html_text import PageText
from tests.web.live_server import LiveServer, ServerThread


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ChurnModel:
    """The default churn model trained on the 1,000-customer demo (cached per session)."""
    return trained_demo_model(tmp_path_factory)


def _promoted(settings: Settings, model: ChurnModel, versions: int = 1) -> ModelRegistry:
    """``versions`` copies of ``model`` in the registry, the last one promoted."""
    registry = ModelRegistry.for_settings(settings)
    for _ in range(versions):
        stored = save_churn_model(registry, model)
    registry.promote(stored.version)
    return registry


def _api(client: TestClient, app: FastAPI, path: str) -> Any:
    response = client.get(path, headers=api_headers(app))
    assert response.status_code == 200, response.text
    return response.json()


def _page(client: TestClient) -> PageText:
    response = client.get("/models")
    assert response.status_code == 200, response.text
    page = PageText(response.text)
    assert page.inline_scripts == []
    return page


def test_a_viewer_sees_the_promoted_models_metrics_as_the_api_gives_them(
    client: TestClient, app: FastAPI, settings: Settings, model: ChurnModel
) -> None:
    _promoted(settings, model, versions=2)
    sign_in_as(client, app, Role.VIEWER)

    page = _page(client)
    api = _api(client, app, "/v1/models/churn-0002")

    metrics = api["metrics"]
    assert page.text("model-auc-value") == f"{metrics['auc']:.3f}"
    assert page.text("model-pr_auc-value") == f"{metrics['pr_auc']:.3f}"
    assert page.text("model-brier-value") == f"{metrics['brier']:.4f}"
    assert page.text("model-lift-value") == f"{metrics['lift_top_decile']:.2f}倍"
    assert f"{metrics['baseline_recency_auc']:.3f}" in page.text("model-auc-note")
    assert "churn-0002" in page.text("model-meta")
    assert "/models" in page.links
    # The model beats the recency rule on the demo, so the AUC card is marked good.
    assert _attributes(page, "model-auc")["data-tone"] == "good"


def test_the_calibration_chart_is_the_apis_curve_with_the_diagonal(
    client: TestClient, app: FastAPI, settings: Settings, model: ChurnModel
) -> None:
    _promoted(settings, model)
    sign_in_as(client, app, Role.AGENT)

    figure = _page(client).json_blocks["chart-calibration-data"]
    curve = _api(client, app, "/v1/models/churn-0001")["calibration_curve"]

    fitted, diagonal = figure["data"]
    assert fitted["x"] == [entry["mean_predicted"] for entry in curve]
    assert fitted["y"] == [entry["observed_rate"] for entry in curve]
    counts = [format_count(entry["count"], "zh-CN") for entry in curve]
    assert [row[2] for row in fitted["customdata"]] == counts
    assert (diagonal["x"], diagonal["y"]) == ([0, 1], [0, 1])


def test_definition_window_features_and_versions_are_shown_in_english(
    client: TestClient, app: FastAPI, settings: Settings, model: ChurnModel
) -> None:
    _promoted(settings, model, versions=2)
    sign_in_as(client, app, Role.OPERATOR)
    client.cookies.set(LANGUAGE_COOKIE, "en")

    response = client.get("/models")
    page = PageText(response.text)

    assert "Churn prediction model" in response.text
    definition = page.text("model-definition")
    assert "no paid order within 90 days after the cut-off" in definition
    assert "customers with at least 1 paid order(s)" in definition
    assert "Validation cut-off 2 Oct 2025" in page.text("model-window")
    features = page.text("model-features")
    assert "Days since last order recency_days" in features
    assert "Silence over the usual interval recency_over_rhythm" in features
    versions = page.text("model-versions")
    assert versions.index("churn-0002") < versions.index("churn-0001")  # newest first
    assert page.text("promoted-tag") == "Promoted" and "Candidate" in versions


def test_without_a_model_the_page_says_to_train_and_promote_one(
    client: TestClient, app: FastAPI
) -> None:
    sign_in_as(client, app, Role.VIEWER)

    page = _page(client)

    notice = page.text("no-model")
    assert "perennial models train" in notice and "perennial models promote" in notice
    assert "还没有流失预测模型" in notice
    assert page.json_blocks == {} and "model-versions" not in page.texts


def test_trained_but_not_promoted_names_the_version_to_promote(
    client: TestClient, app: FastAPI, settings: Settings, model: ChurnModel
) -> None:
    registry = ModelRegistry.for_settings(settings)
    save_churn_model(registry, model)
    save_churn_model(registry, model)
    sign_in_as(client, app, Role.VIEWER)

    page = _page(client)

    assert "perennial models promote churn-0002" in page.text("no-promoted")
    assert "model-auc-value" not in page.texts
    assert "churn-0001" in page.text("model-versions")


def test_a_version_without_a_stored_curve_says_how_to_get_one(
    client: TestClient, app: FastAPI, settings: Settings, model: ChurnModel
) -> None:
    registry = ModelRegistry.for_settings(settings)
    metadata = {k: v for k, v in model.metadata.items() if k != "calibration_curve"}
    stored = registry.save("churn", {"model.txt": b"trees", "calibrator.json": b"{}"}, metadata)
    registry.promote(stored.version)
    sign_in_as(client, app, Role.VIEWER)

    page = _page(client)

    assert "perennial models train" in page.text("no-calibration")
    assert page.json_blocks == {}
    assert page.text("model-auc-value") == f"{model.metadata['metrics']['auc']:.3f}"


def test_a_stranger_is_sent_to_sign_in_first(client: TestClient) -> None:
    response = client.get("/models")

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmodels"


def _attributes(page: PageText, test_id: str) -> dict[str, str | None]:
    return next(a for a in page.attributes if a.get("data-testid") == test_id)


# --- in Chromium ---


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, model: ChurnModel
) -> Iterator[LiveServer]:
    """The real app with one promoted churn model (this module's ``page`` fixture uses it)."""
    settings = Settings(home=tmp_path_factory.mktemp("models-live") / "home")
    _promoted(settings, model)
    thread = ServerThread(settings)
    thread.start()
    try:
        thread.wait_started()
        yield LiveServer(f"http://127.0.0.1:{thread.port}", settings, thread.accounts)
    finally:
        thread.stop()


@pytest.mark.integration
def test_chromium_draws_the_calibration_chart_with_the_apis_numbers(
    page: Page, live_server: LiveServer
) -> None:
    watch = Watch().attach(page)
    sign_in(page, live_server.accounts["viewer"], "/models")
    chart = page.locator("#chart-calibration")
    expect(chart).to_have_attribute("data-drawn", "true")
    api = read_api(live_server, "/v1/models/churn-0001")
    curve = api["calibration_curve"]

    drawn = page.evaluate(
        "() => document.getElementById('chart-calibration').data.map(t => [t.x, t.y])"
    )

    assert drawn[0] == [[e["mean_predicted"] for e in curve], [e["observed_rate"] for e in curve]]
    assert drawn[1] == [[0, 1], [0, 1]]
    expect(chart.locator(".scatterlayer .trace").first.locator(".point")).to_have_count(len(curve))
    expect(page.get_by_test_id("model-auc-value")).to_have_text(f"{api['metrics']['auc']:.3f}")
    expect(page.locator("[data-nav='nav.models']")).to_have_attribute("aria-current", "page")
    screenshot(page, "models-zh-CN")
    page.click("[data-lang='en']")
    expect(page.locator("h1")).to_have_text("Churn prediction model")
    expect(chart).to_have_attribute("data-drawn", "true")
    screenshot(page, "models-en")
    assert watch.problems == [] and watch.dialogs == []
