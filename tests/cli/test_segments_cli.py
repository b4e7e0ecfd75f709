"""``perennial segments`` and ``perennial tags`` on the segments' demo store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.errors import ExitCode, PerennialError
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, SegmentStore

segment_store = segments_conftest.segment_store
"""The segment tests' demo store, as a fixture here too."""


@pytest.fixture
def env(segment_store: SegmentStore, tmp_path: Path) -> dict[str, str]:
    return {
        "PERENNIAL_HOME": str(tmp_path / "home"),
        "PERENNIAL_WAREHOUSE_PATH": str(segment_store.warehouse),
        "PERENNIAL_CLOCK": CLOCK.isoformat(),
        "COLUMNS": "250",
    }


def _run(env: dict[str, str], *arguments: str) -> tuple[int, str]:
    """Exit code and output as ``perennial`` gives them (expected errors are its exit codes)."""
    result = CliRunner().invoke(app, list(arguments), env=env)
    if isinstance(result.exception, PerennialError):
        return int(result.exception.exit_code), result.output + str(result.exception)
    return result.exit_code, result.output


def test_load_preview_create_list_show_export(env: dict[str, str], tmp_path: Path) -> None:
    code, output = _run(env, "segments", "load", "examples/segments/presets.yaml")
    assert code == 0, output
    assert "education_a:" in output and "replenishment_due:" in output

    code, output = _run(env, "segments", "preview", "frequency_orders >= 3", "--sample", "3")
    assert code == 0 and " of " in output and "(frequency_orders >= 3)" in output
    count = int(output.split(" of ")[0].replace(",", ""))

    code, output = _run(
        env, "segments", "create", "regulars", "frequency_orders >= 3", "--title", "常客"
    )
    assert code == 0 and f"{count:,} members" in output

    code, output = _run(env, "segments", "list")
    assert code == 0 and "regulars" in output and "education_b" in output

    code, output = _run(env, "segments", "show", "regulars")
    assert code == 0 and "常客" in output

    out = tmp_path / "regulars.csv"
    code, output = _run(env, "segments", "export", "regulars", "--out", str(out))
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == count and rows[0].keys() == {"customer_id", "entered_at"}


def test_a_bad_expression_exits_with_the_config_code_and_the_caret(env: dict[str, str]) -> None:
    code, output = _run(env, "segments", "create", "bad", "recency_days > 'x'")
    assert code == ExitCode.CONFIG
    assert "column 16" in output and "^" in output
    code, output = _run(env, "segments", "list")
    assert "bad" not in output


def test_tags_define_refresh_import_list(env: dict[str, str], tmp_path: Path) -> None:
    code, output = _run(env, "tags", "define", "loyal", "frequency_orders >= 5")
    assert code == 0 and "customers tagged" in output
    code, output = _run(env, "tags", "refresh")
    assert code == 0 and "price_sensitivity:" in output
    ids = tmp_path / "ids.csv"
    ids.write_text("customer_id,value\nC0000001,a\nNOPE,b\n", encoding="utf-8")
    code, output = _run(env, "tags", "import", "webinar", str(ids))
    assert (
        code == 0
        and "1 customers tagged" in output
        and "line 3: 'NOPE': unknown customer id" in output
    )
    code, output = _run(env, "tags", "list")
    assert code == 0 and "webinar" in output and "import" in output
