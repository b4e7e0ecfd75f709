"""The lifecycle commands end to end: features, profile, stages, compute, backfill, report."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.cli.lifecycle import UnknownCustomerError
from perennial.errors import ExitCode
from perennial.lifecycle.presets import PRESETS_DIR, preset_names, resolve_model_path
from tests.cli.test_app import _perennial
from tests.ingest.factories import orders_csv

EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """C1 buys every 30 days until 1 April 2025; C2 spends big every 5 days until 15 April."""
    monkeypatch.setenv("PERENNIAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    rows = [
        f"A{i},C1,2025-{month:02d}-{day:02d}T02:00:00Z,100,CNY,paid"
        for i, (month, day) in enumerate([(1, 1), (1, 31), (3, 2), (4, 1)])
    ]
    days = ["03-21", "03-26", "03-31", "04-05", "04-10", "04-15"]
    rows += [f"B{i},C2,2025-{day}T02:00:00Z,900,CNY,paid" for i, day in enumerate(days)]
    source = orders_csv(tmp_path / "orders.csv", *rows)
    result = CliRunner().invoke(app, ["ingest", str(source), "--table", "orders"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_profile_prints_labelled_sections_in_chinese_by_default_and_in_english(
    home: Path,
) -> None:
    runner = CliRunner()
    chinese = runner.invoke(app, ["profile", "C1", "--as-of", "2025-05-16"])
    english = runner.invoke(app, ["profile", "C1", "--as-of", "2025-05-16", "--lang", "en"])

    assert chinese.exit_code == 0, chinese.output
    assert "客户画像: C1 (休眠期)" in chinese.output
    assert "距上次下单（天）" in chinese.output and "累计消费" in chinese.output
    assert "400.00" in chinese.output  # four orders of 100
    assert english.exit_code == 0, english.output
    assert "Customer profile: C1 (Dormant)" in english.output
    assert "Days since last order" in english.output
    assert "2025-04-01 10:00" in english.output  # the last order, in Asia/Shanghai


def test_profile_of_an_unknown_customer_fails_and_says_so(home: Path) -> None:
    result = CliRunner().invoke(app, ["profile", "C9", "--as-of", "2025-05-16"])

    assert isinstance(result.exception, UnknownCustomerError)
    assert "'C9': no such customer" in str(result.exception)


def test_features_writes_one_row_per_customer(home: Path) -> None:
    output = home / "features.parquet"
    result = CliRunner().invoke(app, ["features", "--as-of", "2025-05-16", "--output", str(output)])

    assert result.exit_code == 0, result.output
    table = pq.read_table(output)
    assert sorted(table.column("customer_id").to_pylist()) == ["C1", "C2"]
    assert "2 customers" in result.output


def test_stages_and_compute_count_customers_per_stage_with_either_preset(home: Path) -> None:
    runner = CliRunner()
    stages = runner.invoke(app, ["lifecycle", "stages", "--as-of", "2025-05-16"])
    computed = runner.invoke(
        app, ["lifecycle", "compute", "--as-of", "2025-05-16", "--model", "seed002"]
    )

    assert stages.exit_code == 0, stages.output
    assert "seed000: 2 customers" in stages.output and "休眠期" in stages.output
    assert computed.exit_code == 0, computed.output
    assert "2 profiles stored" in computed.output


def test_backfill_then_report_and_flows_read_the_history(home: Path) -> None:
    runner = CliRunner()
    backfilled = runner.invoke(
        app, ["lifecycle", "backfill", "--from", "2025-05-01", "--to", "2025-05-31"]
    )
    report = runner.invoke(app, ["lifecycle", "report"])
    flows = runner.invoke(app, ["lifecycle", "flows", "--from", "2025-05-01", "--to", "2025-05-31"])

    assert backfilled.exit_code == 0, backfilled.output
    assert "31 days (2025-05-01 to 2025-05-31" in backfilled.output
    assert "62 stage rows" in backfilled.output
    assert report.exit_code == 0, report.output
    assert "seed000 on 2025-05-31: 2 customers" in report.output
    assert "Top movers" in report.output
    assert flows.exit_code == 0, flows.output
    assert "growth" in flows.output and "dormant" in flows.output  # C1 went dormant in May


def test_a_backfill_that_ends_before_it_starts_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(
        app, ["lifecycle", "backfill", "--from", "2025-05-31", "--to", "2025-05-01"]
    )

    assert result.exit_code == ExitCode.USAGE
    assert "before --from" in result.output


def test_a_missing_model_file_is_a_config_error_naming_the_file(home: Path) -> None:
    result = _perennial(home / "home", "lifecycle", "stages", "--model", "nope.yaml")

    assert result.returncode == ExitCode.CONFIG
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_presets_resolve_by_name_and_the_examples_are_the_same_files() -> None:
    assert preset_names() == ["seed000", "seed002"]
    assert resolve_model_path("seed002") == PRESETS_DIR / "seed002.yaml"
    assert resolve_model_path("my.yaml") == Path("my.yaml")
    for name in ("seed000", "seed002", "rfm"):
        example = EXAMPLES / f"{name}.yaml"
        assert example.read_bytes() == (PRESETS_DIR / f"{name}.yaml").read_bytes()
