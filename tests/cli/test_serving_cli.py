"""``perennial serving refresh`` and the refresh at the end of ``perennial lifecycle compute``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.errors import ExitCode
from perennial.serving import ServingRefreshError
from tests.cli.test_app import _perennial
from tests.ingest.factories import orders_csv


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two customers' orders in the warehouse; nothing computed yet."""
    home = tmp_path / "home"
    monkeypatch.setenv("PERENNIAL_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    rows = [
        "A1,C1,2025-03-01T02:00:00Z,100,CNY,paid",
        "A2,C1,2025-04-01T02:00:00Z,100,CNY,paid",
        "B1,C2,2025-05-10T02:00:00Z,900,CNY,paid",
    ]
    source = orders_csv(tmp_path / "orders.csv", *rows)
    result = CliRunner().invoke(app, ["ingest", str(source), "--table", "orders"])
    assert result.exit_code == 0, result.output
    return home


def _customers(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT customer_id, stage FROM customers ORDER BY 1").fetchall()


def test_lifecycle_compute_ends_by_refreshing_the_serving_store(home: Path) -> None:
    result = CliRunner().invoke(app, ["lifecycle", "compute", "--as-of", "2025-05-16"])

    assert result.exit_code == 0, result.output
    assert "serving store: 2 customers, 3 timeline items, 0 transitions" in result.output
    assert _customers(home / "serving.db") == [("C1", "growth"), ("C2", "introduction")]


def test_serving_refresh_rebuilds_from_the_stored_profiles_and_history(home: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["lifecycle", "compute", "--as-of", "2025-05-16", "--model", "seed002"])
    backfill = runner.invoke(
        app,
        ["lifecycle", "backfill", "--from", "2025-05-01", "--to", "2025-05-16", "-m", "seed002"],
    )
    assert backfill.exit_code == 0, backfill.output

    result = runner.invoke(app, ["serving", "refresh", "--model", "seed002"])

    assert result.exit_code == 0, result.output
    assert "stage history 2025-05-01 to 2025-05-16 (seed002)" in result.output
    assert _customers(home / "serving.db") == [("C1", "active"), ("C2", "new")]


def test_refreshing_with_a_model_the_profiles_do_not_use_is_a_store_error(home: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["lifecycle", "compute", "--as-of", "2025-05-16"])
    before = (home / "serving.db").read_bytes()

    result = runner.invoke(app, ["serving", "refresh", "--model", "seed002"])

    assert isinstance(result.exception, ServingRefreshError)
    assert "refresh with the model the profiles were computed with" in str(result.exception)
    assert (home / "serving.db").read_bytes() == before


def test_refreshing_before_any_profiles_exits_with_the_store_code_and_the_remedy(
    home: Path,
) -> None:
    result = _perennial(home, "serving", "refresh")

    assert result.returncode == ExitCode.STORE
    assert "perennial lifecycle compute" in result.stderr and "Traceback" not in result.stderr
