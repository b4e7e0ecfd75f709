"""Properties that hold for any input: CSV round-trips exactly, and no row is ever lost."""

from __future__ import annotations

import csv
import io
import string
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW

_TEXT = st.text(
    alphabet=st.sampled_from(
        [*string.ascii_letters, *string.digits, " ", ",", '"', "\n", "'", "é", "李", "\t", ";"]
    ),
    max_size=12,
)
_CUSTOMER = st.from_regex(r"C[0-9]{1,4}", fullmatch=True)
_AMOUNT = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)
_ROW = st.tuples(_CUSTOMER, _AMOUNT, _TEXT)
_JUNK = st.text(alphabet=st.sampled_from([*string.printable, "李", "\u00a0"]), max_size=30)
_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["order_id", "customer_id", "placed_at", "amount", "currency", "status", "coupon_code"]
    )
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@_SETTINGS
@given(rows=st.lists(_ROW, min_size=1, max_size=30))
@example(rows=[("C1", Decimal("1.00"), marker) for marker in ("null", "NULL", "NA", "N/A", "NaN")])
def test_any_valid_csv_round_trips_exactly(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, Decimal, str]]
) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    source_rows = [
        [f"O{i}", customer, "2025-01-01T00:00:00Z", str(amount), "CNY", "paid", note]
        for i, (customer, amount, note) in enumerate(rows)
    ]
    settings_ = Settings(home=folder / "home")
    report = ingest_file(_write(folder / "o.csv", source_rows), settings_, table="orders", now=NOW)

    expected = {(r[0], r[1], Decimal(r[3]), r[6].strip() or None) for r in source_rows}
    paths = Warehouse(settings_.warehouse).snapshot().paths("orders")
    stored = duckdb.execute(
        "SELECT order_id, customer_id, amount, coupon_code FROM read_parquet(?)", [paths]
    ).fetchall()
    assert report.accepted == len(source_rows)
    assert set(stored) == expected


@_SETTINGS
@given(cells=st.lists(st.lists(_JUNK, min_size=0, max_size=9), min_size=1, max_size=25))
def test_every_row_of_any_file_is_accepted_quarantined_or_counted_as_a_duplicate(
    tmp_path_factory: pytest.TempPathFactory, cells: list[list[str]]
) -> None:
    folder = tmp_path_factory.mktemp("junk")
    source = _write(folder / "o.csv", cells)
    settings_ = Settings(home=folder / "home")
    report = ingest_file(source, settings_, table="orders", now=NOW)

    # A record with no value at all (a blank line, or only delimiters) is not a row.
    non_blank = sum(1 for row in csv.reader(io.StringIO(source.read_text())) if any(row)) - 1
    assert report.balanced
    assert report.rows_read == non_blank
    snapshot = Warehouse(settings_.warehouse).snapshot()
    assert snapshot.rows("orders") == report.accepted
    assert snapshot.rows("quarantine") == report.quarantined
