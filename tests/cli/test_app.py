"""The command line: help everywhere, clear errors, exit codes that mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.errors import ExitCode
from tests.conftest import DATA
from tests.ingest.factories import orders_csv, write_text

EXAMPLES = Path(__file__).parents[2] / "examples" / "mappings"
COMMANDS = [
    [],
    ["ingest"],
    ["quarantine"],
    ["batches"],
    ["drain"],
    ["init"],
    ["store"],
    ["store", "info"],
    ["store", "compact"],
    ["demo"],
    ["demo", "generate"],
    ["demo", "run"],
]


def _perennial(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point as a user would, in its own process."""
    environment = {**os.environ, "PERENNIAL_HOME": str(home), "COLUMNS": "200"}
    command = [sys.executable, "-c", "from perennial.cli.app import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "perennial")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.integration
def test_ingest_prints_a_summary_and_quarantine_lists_the_bad_rows(tmp_path: Path) -> None:
    source = orders_csv(
        tmp_path / "orders.csv",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O2,C1,2025-03-01T10:00:00Z,-1,CNY,paid",
    )
    home = tmp_path / "home"

    ingested = _perennial(home, "ingest", str(source), "--table", "orders")
    listed = _perennial(home, "quarantine")
    as_json = [
        json.loads(line) for line in _perennial(home, "quarantine", "--json").stdout.splitlines()
    ]
    strict = _perennial(home, "ingest", str(source), "--table", "orders", "--fail-on-quarantine")

    assert ingested.returncode == 0, ingested.stderr
    assert "Ingest summary" in ingested.stdout
    assert "amount: negative amount" in ingested.stdout
    assert "negative amount '-1'" in listed.stdout
    assert "orders.csv, line 3, column amount" in listed.stdout
    assert [(r["source_line"], r["column_name"]) for r in as_json] == [(3, "amount")]
    assert strict.returncode == ExitCode.ROWS_QUARANTINED


@pytest.mark.integration
def test_cdnow_through_the_cli_accepts_every_row(tmp_path: Path) -> None:
    result = _perennial(
        tmp_path / "home",
        "ingest",
        str(DATA / "CDNOW_master.txt"),
        "--mapping",
        str(EXAMPLES / "cdnow.yaml"),
    )
    assert result.returncode == 0, result.stderr
    assert "69,659" in result.stdout
    batches = _perennial(tmp_path / "home", "batches")
    assert "69659" in batches.stdout.replace(",", "")


@pytest.mark.integration
def test_a_bad_mapping_exits_with_the_config_code_and_names_the_key(tmp_path: Path) -> None:
    mapping = write_text(tmp_path / "m.yaml", "table: orders\ncolumns:\n  amount_paid: x\n")
    source = orders_csv(tmp_path / "orders.csv", "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid")
    result = _perennial(tmp_path / "home", "ingest", str(source), "-m", str(mapping))
    assert result.returncode == ExitCode.CONFIG
    assert "columns.amount_paid: orders has no column 'amount_paid'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_an_unreadable_file_exits_with_the_invalid_input_code(tmp_path: Path) -> None:
    source = write_text(tmp_path / "orders.csv", "order_id\nO1\n\xff\n", "latin-1")
    result = _perennial(tmp_path / "home", "ingest", str(source), "--table", "orders")
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "orders.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_creates_both_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERENNIAL_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "perennial.db").is_file()
    assert (tmp_path / "home" / "warehouse").is_dir()


def test_demo_run_ingests_every_generated_file_and_the_store_commands_describe_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERENNIAL_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "run", "--customers", "300", "--out", str(tmp_path / "d")])
    info = runner.invoke(app, ["store", "info"])
    batches = runner.invoke(app, ["batches"])
    compacted = runner.invoke(app, ["store", "compact"])
    quarantine = runner.invoke(app, ["quarantine", "--limit", "3"])

    assert demo.exit_code == 0, demo.output
    assert "deliberately invalid in the demo files" in demo.output
    quarantined = int(demo.output.split("quarantined rows")[1].split()[0].replace(",", ""))
    invalid = int(demo.output.split("demo files:")[1].split(")")[0].replace(",", ""))
    assert quarantined == invalid > 0
    assert "orders" in info.output and "events" in info.output
    assert batches.output.count("events") >= 3
    assert compacted.exit_code == 0 and "files:" in compacted.output
    assert quarantine.output.count("reason:") == min(3, quarantined)


def test_identity_show_explains_a_demo_customer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERENNIAL_HOME", str(tmp_path / "home"))
    customers = write_text(tmp_path / "c.csv", "customer_id,phone\nC1,13812345678\n")
    runner = CliRunner()
    runner.invoke(app, ["ingest", str(customers), "--table", "customers"])
    shown = runner.invoke(app, ["identity", "show", "phone:138 1234 5678"])
    unknown = runner.invoke(app, ["identity", "show", "phone:13900000000"])

    assert shown.exit_code == 0, shown.output
    assert "phone:+8613812345678 -> customer C1" in shown.output
    assert "customer record phone" in shown.output
    assert unknown.exit_code != 0
