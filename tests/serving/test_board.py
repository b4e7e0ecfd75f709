"""The board's answers from the serving store equal what the warehouse says directly."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from perennial.lifecycle.stage_model import StageModel
from perennial.serving import ServingStore, refresh_serving
from perennial.serving.board import Board, BoardRangeError, load_board
from tests.serving import expected
from tests.serving.demo_store import DemoStore


@pytest.fixture
def board(demo: DemoStore) -> Board:
    store = ServingStore(demo.settings.serving_database)
    try:
        return store.cached("board", load_board)
    finally:
        store.close()


def test_the_board_is_as_of_the_last_day_of_the_stage_history(
    demo: DemoStore, board: Board
) -> None:
    assert board.model == "seed000"
    assert board.as_of == demo.end
    assert board.history == (demo.history_start, demo.end)
    assert board.profiles_day == demo.end
    assert board.main_currency == "CNY"


def test_distribution_equals_the_daily_distribution_of_the_stage_history(
    demo: DemoStore, board: Board
) -> None:
    by_day = expected.distribution(demo, demo.history_start, demo.end)

    days, series = board.distribution(demo.history_start, demo.end)

    assert days == sorted(by_day) and len(days) == 45
    assert [s.stage for s in series][:5] == list(demo.model.keys)
    for item in series:
        assert item.customers == [by_day[day].get(item.stage, 0) for day in days]
    assert sum(s.customers[-1] for s in series) == demo.summary.customers


def test_distribution_of_a_range_keeps_only_its_stored_days(board: Board) -> None:
    days, series = board.distribution(date(2025, 12, 30), date(2026, 3, 1))
    assert days == [date(2025, 12, 30), date(2025, 12, 31)]
    assert all(len(s.customers) == 2 for s in series)
    assert board.distribution(date(2020, 1, 1), date(2020, 2, 1))[0] == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2025, 11, 17), date(2025, 12, 31)),
        (date(2025, 12, 1), date(2025, 12, 31)),
        (date(2025, 11, 20), date(2025, 11, 21)),
        (date(2025, 12, 10), date(2025, 12, 10)),
    ],
)
def test_flows_equal_the_flow_matrix_of_the_warehouse(
    demo: DemoStore, board: Board, start: date, end: date
) -> None:
    matrix = expected.flows(demo, start, end)

    assert board.flows(start, end) == matrix
    assert sum(flow.customers for flow in matrix) > 200


def test_flows_over_the_whole_history_include_new_customers_and_moves(board: Board) -> None:
    flows = board.flows(date(2025, 11, 17), date(2025, 12, 31))
    assert any(flow.from_stage == "(new)" for flow in flows)
    assert any(flow.from_stage != flow.to_stage != "(new)" for flow in flows)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (date(2025, 11, 16), date(2025, 12, 31), "start"),
        (date(2025, 12, 1), date(2026, 1, 1), "end"),
        (date(2025, 12, 20), date(2025, 12, 1), "end"),
    ],
)
def test_flows_outside_the_history_or_backwards_are_refused_naming_the_day(
    board: Board, start: date, end: date, field: str
) -> None:
    with pytest.raises(BoardRangeError) as caught:
        board.flows(start, end)
    assert caught.value.field == field


@pytest.mark.parametrize("period_days", [1, 7, 30])
def test_kpis_equal_counts_revenue_and_repeat_buyers_computed_from_the_warehouse(
    demo: DemoStore, board: Board, period_days: int
) -> None:
    end = demo.end
    start = end - timedelta(days=period_days - 1)
    previous_end = start - timedelta(days=1)
    previous_start = previous_end - timedelta(days=period_days - 1)
    stages_now = expected.stages_on(demo, end)
    stages_before = expected.stages_on(demo, previous_end)

    report = board.kpis(period_days)

    assert report.period == (start, end)
    assert report.previous_period == (previous_start, previous_end)
    assert report.customers.value == sum(stages_now.values())
    assert report.customers.previous == (sum(stages_before.values()) or None)
    for role, kpi in report.roles.items():
        keys = demo.model.kpi_stages(role)
        assert kpi.stages == keys
        assert kpi.value == sum(stages_now[key] for key in keys)
    assert report.roles["active"].stages == ("mature", "growth")
    revenue, repeat = expected.orders_in(demo, start, end)
    previous_revenue, previous_repeat = expected.orders_in(demo, previous_start, previous_end)
    assert report.revenue.value == pytest.approx(revenue)
    assert report.revenue.previous == pytest.approx(previous_revenue)
    assert report.repurchase_rate.value == pytest.approx(repeat)
    assert report.repurchase_rate.previous == pytest.approx(previous_repeat)


def test_kpi_changes_compare_with_the_previous_period(board: Board) -> None:
    report = board.kpis(30)
    customers = report.customers
    assert customers.previous is not None and customers.value is not None
    assert customers.change == customers.value - customers.previous
    assert customers.change_ratio == pytest.approx(customers.change / customers.previous)
    earliest = board.kpis(60).customers
    assert earliest.previous is None and earliest.change is None and earliest.change_ratio is None


def test_the_rfm_grid_counts_every_profile_once(demo: DemoStore, board: Board) -> None:
    cells, revenue = expected.rfm_cells(demo)
    segments = expected.rfm_segments(demo)
    profiles = sum(segments.values())

    assert [(c.r, c.f) for c in board.rfm_cells] == [
        (r, f) for r in range(1, 6) for f in range(1, 6)
    ]
    for cell in board.rfm_cells:
        assert cell.customers == cells[(cell.r, cell.f)]
        assert cell.revenue == pytest.approx(revenue[(cell.r, cell.f)])
    assert {s.segment: s.customers for s in board.rfm_segments if s.customers} == dict(segments)
    assert sum(s.customers for s in board.rfm_segments) == profiles == demo.summary.customers
    assert board.rfm_segments[-1].segment == "no_orders"
    assert board.rfm_segments[0].label_zh == "重要价值客户"


def test_a_model_without_stage_history_shows_the_profiles_day_and_refuses_flows(
    demo: DemoStore, tmp_path: Path
) -> None:
    renamed = StageModel.model_validate({**demo.model.model_dump(), "name": "seed000-copy"})
    settings = demo.settings.model_copy(update={"serving_path": tmp_path / "serving.db"})
    summary = refresh_serving(settings, renamed)
    store = ServingStore(tmp_path / "serving.db")
    board = store.cached("board", load_board)
    store.close()

    assert summary.history is None and summary.transitions == 0
    assert board.as_of == demo.end and board.history is None
    days, series = board.distribution(demo.end, demo.end)
    assert days == [demo.end]
    assert sum(s.customers[0] for s in series) == summary.customers
    assert board.kpis(7).customers.previous is None
    with pytest.raises(BoardRangeError, match="no stage history"):
        board.flows(demo.end, demo.end)
