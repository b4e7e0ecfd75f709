"""``/v1/lifecycle``: the board's numbers equal what the lifecycle code computes directly."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.api.routes.lifecycle import (
    DistributionView,
    FlowsView,
    KpisView,
    RfmGridView,
    TopMoversView,
)
from perennial.config import Settings
from perennial.lifecycle.flows import top_movers
from tests.api.conftest import KeyFor
from tests.serving import expected
from tests.serving.demo_store import DemoStore, demo_store


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.fixture
def settings(demo: DemoStore, tmp_path: Path) -> Settings:
    return demo.settings.model_copy(
        update={
            "home": tmp_path / "home",
            "warehouse_path": demo.settings.warehouse,
            "serving_path": demo.settings.serving_database,
        }
    )


def _get(client: TestClient, key_for: KeyFor, path: str, **params: Any) -> Any:
    response = client.get(f"/v1/lifecycle/{path}", params=params, headers=key_for(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


def test_distribution_defaults_to_the_stored_history_and_equals_the_warehouse(
    client: TestClient, key_for: KeyFor, demo: DemoStore
) -> None:
    view = DistributionView.model_validate(_get(client, key_for, "distribution"))
    by_day = expected.distribution(demo, demo.history_start, demo.end)

    assert (view.model, view.as_of, view.start, view.end) == (
        "seed000",
        demo.end,
        demo.history_start,
        demo.end,
    )
    assert view.days == sorted(by_day)
    assert [s.stage for s in view.series] == list(demo.model.keys)
    assert view.series[0].label_zh == "引入期"
    for series in view.series:
        assert series.customers == [by_day[day].get(series.stage, 0) for day in view.days]


def test_distribution_of_a_chosen_range(client: TestClient, key_for: KeyFor) -> None:
    view = DistributionView.model_validate(
        _get(client, key_for, "distribution", start="2025-12-25", end="2025-12-27")
    )
    assert view.days == [date(2025, 12, 25), date(2025, 12, 26), date(2025, 12, 27)]


@pytest.mark.parametrize(
    ("params", "start"),
    [({}, date(2025, 12, 1)), ({"start": "2025-11-17", "end": "2025-12-15"}, date(2025, 11, 17))],
)
def test_flows_and_top_movers_equal_the_flow_matrix(
    client: TestClient, key_for: KeyFor, demo: DemoStore, params: dict[str, str], start: date
) -> None:
    flows = FlowsView.model_validate(_get(client, key_for, "flows", **params))
    movers = TopMoversView.model_validate(_get(client, key_for, "top-movers", **params, limit=3))
    matrix = expected.flows(demo, flows.start, flows.end)

    assert flows.start == movers.start == start
    assert [(f.from_stage, f.to_stage, f.customers) for f in flows.flows] == [
        (f.from_stage, f.to_stage, f.customers) for f in matrix
    ]
    assert [(f.from_stage, f.to_stage, f.customers) for f in movers.movers] == [
        (f.from_stage, f.to_stage, f.customers) for f in top_movers(matrix, 3)
    ]
    assert [stage.key for stage in flows.stages] == list(demo.model.keys)
    assert flows.stages[0].kpi == "new"


@pytest.mark.parametrize("period_days", [7, 30])
def test_kpis_equal_the_warehouse_with_the_previous_period(
    client: TestClient, key_for: KeyFor, demo: DemoStore, period_days: int
) -> None:
    view = KpisView.model_validate(_get(client, key_for, "kpis", period_days=period_days))
    end = demo.end
    previous_end = end - timedelta(days=period_days)
    now, before = expected.stages_on(demo, end), expected.stages_on(demo, previous_end)
    revenue, repeat = expected.orders_in(demo, end - timedelta(days=period_days - 1), end)
    previous_revenue, previous_repeat = expected.orders_in(
        demo, previous_end - timedelta(days=period_days - 1), previous_end
    )

    assert (view.period_start, view.period_end) == (end - timedelta(days=period_days - 1), end)
    assert view.previous_end == previous_end and view.currency == "CNY"
    assert (view.customers.value, view.customers.previous) == (
        sum(now.values()),
        sum(before.values()),
    )
    assert view.customers.change == sum(now.values()) - sum(before.values())
    for name in ("active", "new", "dormant", "churned"):
        card = getattr(view, name)
        stages = demo.model.kpi_stages(name)  # type: ignore[arg-type]
        assert card.stages == list(stages) and stages
        assert card.value == sum(now[key] for key in stages)
        assert card.previous == sum(before[key] for key in stages)
    assert view.revenue.value == pytest.approx(revenue)
    assert view.revenue.previous == pytest.approx(previous_revenue)
    assert view.revenue.change_ratio == pytest.approx(
        (revenue - previous_revenue) / previous_revenue
    )
    assert view.repurchase_rate.value == pytest.approx(repeat)
    assert view.repurchase_rate.previous == pytest.approx(previous_repeat)


def test_the_rfm_grid_equals_the_profiles(
    client: TestClient, key_for: KeyFor, demo: DemoStore
) -> None:
    view = RfmGridView.model_validate(_get(client, key_for, "rfm-grid"))
    customers, revenue = expected.rfm_cells(demo)
    segments = expected.rfm_segments(demo)

    assert view.customers == demo.summary.customers and view.as_of == demo.end
    assert len(view.cells) == 25
    for cell in view.cells:
        assert cell.customers == customers[(cell.r, cell.f)]
        assert cell.revenue == pytest.approx(revenue[(cell.r, cell.f)])
    assert {s.segment: s.customers for s in view.segments if s.customers} == dict(segments)
    assert sum(s.share for s in view.segments) == pytest.approx(1.0)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_board(client: TestClient, key_for: KeyFor, role: Role) -> None:
    for path in ("distribution", "flows", "kpis", "rfm-grid", "top-movers"):
        assert client.get(f"/v1/lifecycle/{path}", headers=key_for(role)).status_code == 200


def test_the_board_needs_a_caller(client: TestClient) -> None:
    assert client.get("/v1/lifecycle/kpis").status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("flows", {"start": "2025-01-01"}, 422, "query.start"),
        ("flows", {"end": "2026-01-05"}, 422, "query.end"),
        ("top-movers", {"start": "2025-12-20", "end": "2025-12-10"}, 422, "query.start"),
        ("distribution", {"start": "2025-12-20", "end": "2025-12-10"}, 422, "query.start"),
        ("distribution", {"start": "yesterday"}, 422, "query.start"),
        ("kpis", {"period_days": 0}, 422, "query.period_days"),
        ("kpis", {"period_days": 367}, 422, "query.period_days"),
        ("top-movers", {"limit": 51}, 422, "query.limit"),
    ],
)
def test_bad_ranges_are_a_422_naming_the_parameter(
    client: TestClient,
    key_for: KeyFor,
    path: str,
    params: dict[str, Any],
    status: int,
    field: str,
) -> None:
    response = client.get(f"/v1/lifecycle/{path}", params=params, headers=key_for(Role.VIEWER))
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_flows_outside_the_history_say_which_days_it_covers(
    client: TestClient, key_for: KeyFor
) -> None:
    response = client.get(
        "/v1/lifecycle/flows", params={"start": "2025-01-01"}, headers=key_for(Role.VIEWER)
    )
    assert response.json()["error"]["code"] == "out_of_range"
    assert "covers 2025-11-17 to 2025-12-31" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["distribution", "flows", "kpis", "rfm-grid", "top-movers"])
def test_without_a_serving_store_the_board_answers_503(tmp_path: Path, path: str) -> None:
    from perennial.access.api_keys import create_api_key
    from perennial.service import create_app

    app = create_app(Settings(home=tmp_path / "empty-home"))
    with TestClient(app) as client:
        with app.state.perennial.engine.begin() as connection:
            token = create_api_key(
                connection, name="t", roles=frozenset({Role.VIEWER}), created_by="tests"
            ).token
        response = client.get(f"/v1/lifecycle/{path}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "serving_unavailable"
