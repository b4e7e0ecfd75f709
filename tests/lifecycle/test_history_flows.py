"""Reading the stage history: stages per day, flows, time in stage, the report, the CLI.

The store is the one of ``test_history``, backfilled for 14 to 17 May: C1 goes
growth -> dormant on 16 May, C2 stays churned, C3 is first seen (introduction)
on 15 May.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.backfill import backfill
from perennial.lifecycle.flows import (
    NEW,
    Flow,
    HistoryMissingError,
    daily_distribution,
    flow_matrix,
    history_days,
    lifecycle_report,
    median_days_in_stage,
    top_movers,
)
from perennial.lifecycle.stage_model import load_stage_model
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Snapshot, Warehouse
from tests.conftest import NOW
from tests.ingest.factories import orders_csv

EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"
SEED000 = load_stage_model(EXAMPLES / "seed000.yaml")
MAY = {day: date(2025, 5, day) for day in range(10, 20)}


@pytest.fixture(scope="module")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("flows")
    settings = Settings(home=folder / "home")
    days = ["01-01", "01-31", "03-02", "04-01"]
    rows = [f"A{i},C1,2025-{day}T02:00:00Z,100,CNY,paid" for i, day in enumerate(days)]
    days = ["03-21", "03-26", "03-31", "04-05", "04-10", "04-15"]
    rows += [f"B{i},C2,2025-{day}T02:00:00Z,900,CNY,paid" for i, day in enumerate(days)]
    rows.append("N1,C3,2025-05-15T02:00:00Z,50,CNY,paid")
    ingest_file(orders_csv(folder / "orders.csv", *rows), settings, table="orders", now=NOW)
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        backfill(backend, snapshot, SEED000, MAY[14], MAY[17])
    return settings


@pytest.fixture
def backend(history_store: Settings) -> Iterator[Backend]:
    with open_backend(history_store) as opened:
        yield opened


@pytest.fixture
def snapshot(history_store: Settings) -> Snapshot:
    return Warehouse(history_store.warehouse).snapshot()


def test_the_history_knows_its_first_and_last_day(backend: Backend, snapshot: Snapshot) -> None:
    assert history_days(backend, snapshot, "seed000") == (MAY[14], MAY[17])
    assert history_days(backend, snapshot, "seed002") is None


def test_stage_distribution_per_day_counts_every_known_customer(
    backend: Backend, snapshot: Snapshot
) -> None:
    counts = daily_distribution(backend, snapshot, "seed000", MAY[15], MAY[16]).to_pylist()

    assert counts == [
        {"day": MAY[15], "stage": "introduction", "customers": 1},
        {"day": MAY[15], "stage": "churned", "customers": 1},
        {"day": MAY[15], "stage": "growth", "customers": 1},
        {"day": MAY[16], "stage": "introduction", "customers": 1},
        {"day": MAY[16], "stage": "churned", "customers": 1},
        {"day": MAY[16], "stage": "dormant", "customers": 1},
    ]


def test_the_flow_matrix_counts_movers_stayers_and_newcomers(
    backend: Backend, snapshot: Snapshot
) -> None:
    flows = flow_matrix(backend, snapshot, "seed000", MAY[14], MAY[17])

    assert set(flows) == {
        Flow("growth", "dormant", 1),
        Flow("churned", "churned", 1),
        Flow(NEW, "introduction", 1),
    }


def test_top_movers_are_the_largest_flows_between_different_stages() -> None:
    flows = [Flow("a", "a", 50), Flow("a", "b", 3), Flow(NEW, "a", 7), Flow("b", "a", 3)]

    assert top_movers(flows, limit=2) == [Flow(NEW, "a", 7), Flow("a", "b", 3)]


def test_time_in_stage_runs_from_entering_to_the_end_of_the_history(
    backend: Backend, snapshot: Snapshot
) -> None:
    # C3 entered introduction on 15 May and C1 dormant on 16 May; both still there on 17 May.
    assert median_days_in_stage(backend, snapshot, "seed000") == {
        "dormant": 2.0,
        "introduction": 3.0,
    }


def test_a_day_outside_the_history_is_a_clear_error(backend: Backend, snapshot: Snapshot) -> None:
    with pytest.raises(
        HistoryMissingError, match=r"2025-05-10: it covers 2025-05-14 to 2025-05-17"
    ):
        flow_matrix(backend, snapshot, "seed000", MAY[10], MAY[17])


def test_the_report_shows_the_last_day_its_flows_and_top_movers(
    backend: Backend, snapshot: Snapshot
) -> None:
    report = lifecycle_report(backend, snapshot, SEED000)

    assert report.day == MAY[17]
    assert report.flows_since == MAY[14]  # 30 days back is before the history
    assert {count.key: count.customers for count in report.distribution} == {
        "introduction": 1,
        "churned": 1,
        "dormant": 1,
        "mature": 0,
        "growth": 0,
    }
    assert report.top_movers == [Flow(NEW, "introduction", 1), Flow("growth", "dormant", 1)]


def test_the_cli_backfills_reports_and_prints_flows(
    history_store: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = shutil.copytree(history_store.home, tmp_path / "home")  # the module's store stays
    monkeypatch.setenv("PERENNIAL_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    model = ["--model", str(EXAMPLES / "seed000.yaml")]
    runner = CliRunner()

    built = runner.invoke(
        app, ["lifecycle", "backfill", "--from", "2025-05-18", "--to", "2025-05-19", *model]
    )
    reported = runner.invoke(app, ["lifecycle", "report", "--as-of", "2025-05-19", *model])
    flowed = runner.invoke(
        app, ["lifecycle", "flows", "--from", "2025-05-14", "--to", "2025-05-19", *model]
    )

    assert built.exit_code == 0, built.output
    assert "2 days" in built.output and "6 stage rows" in built.output
    assert reported.exit_code == 0, reported.output
    assert "seed000 on 2025-05-19: 3 customers" in reported.output
    assert "Top movers 2025-05-14 -> 2025-05-19" in reported.output
    assert flowed.exit_code == 0, flowed.output
    assert "(new)" in flowed.output and "dormant" in flowed.output


def test_the_cli_refuses_a_day_that_is_not_a_date(
    history_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERENNIAL_HOME", str(history_store.home))

    result = CliRunner().invoke(
        app, ["lifecycle", "flows", "--from", "May 1", "--to", "2025-05-19"]
    )

    assert result.exit_code == 2
    assert "is not a day" in result.output
