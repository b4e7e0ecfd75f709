"""End-to-end ingest: good files, re-sends, conflicts and the counts that prove nothing is lost."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from perennial.config import Settings
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.ingest.quarantine import list_quarantine
from perennial.store.warehouse import Warehouse
from tests.conftest import DATA, NOW
from tests.ingest.factories import orders_csv, write_text

EXAMPLES = Path(__file__).parents[2] / "examples" / "mappings"


def _rows(settings: Settings, table: str, columns: str = "*") -> list[tuple[object, ...]]:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    if not paths:
        return []
    return duckdb.execute(
        f"SELECT {columns} FROM read_parquet(?) ORDER BY ALL",
        [paths],
    ).fetchall()


def test_cdnow_log_is_accepted_whole_and_a_second_ingest_adds_nothing(settings: Settings) -> None:
    mapping = load_mapping(EXAMPLES / "cdnow.yaml")
    first = ingest_file(DATA / "CDNOW_master.txt", settings, mapping=mapping, now=NOW)
    second = ingest_file(DATA / "CDNOW_master.txt", settings, mapping=mapping, now=NOW)

    assert (first.rows_read, first.accepted, first.quarantined) == (69_659, 69_659, 0)
    assert (second.accepted, second.already_stored) == (0, 69_659)
    assert first.balanced and second.balanced
    stats = _rows(settings, "orders", "count(*), count(DISTINCT customer_id), sum(amount)")
    assert stats[0][0] == 69_659
    assert stats[0][1] == 23_570
    assert float(stats[0][2]) == pytest.approx(2_500_315.63, abs=0.01)


def test_cdnow_dates_are_read_in_new_york_and_stored_in_utc(settings: Settings) -> None:
    mapping = load_mapping(EXAMPLES / "cdnow.yaml")
    ingest_file(DATA / "CDNOW_master.txt", settings, mapping=mapping, now=NOW)
    first = _rows(settings, "orders", "min(placed_at)")[0][0]
    assert first.isoformat() == "1997-01-01T05:00:00+00:00"


def test_the_same_row_in_two_files_is_stored_once(settings: Settings, tmp_path: Path) -> None:
    row = "O1,C1,2025-03-01T10:00:00Z,10.50,CNY,paid"
    a = orders_csv(tmp_path / "a.csv", row, "O2,C1,2025-03-02T10:00:00Z,3,CNY,paid")
    b = orders_csv(tmp_path / "b.csv", row, "O3,C2,2025-03-03T10:00:00Z,4,CNY,paid")

    ingest_file(a, settings, table="orders", now=NOW)
    report = ingest_file(b, settings, table="orders", now=NOW)

    assert (report.accepted, report.already_stored, report.quarantined) == (1, 1, 0)
    assert [r[0] for r in _rows(settings, "orders", "order_id")] == ["O1", "O2", "O3"]


def test_a_resent_id_with_other_values_is_quarantined_not_replaced(
    settings: Settings, tmp_path: Path
) -> None:
    ingest_file(
        orders_csv(tmp_path / "a.csv", "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid"),
        settings,
        table="orders",
        now=NOW,
    )
    report = ingest_file(
        orders_csv(tmp_path / "b.csv", "O1,C1,2025-03-01T10:00:00Z,10,CNY,refunded"),
        settings,
        table="orders",
        now=NOW,
    )

    assert (report.accepted, report.quarantined) == (0, 1)
    assert _rows(settings, "orders", "status") == [("paid",)]
    [row] = list_quarantine(settings)
    assert row.reason.startswith("order_id: already stored with other values (id 'O1' from ")
    assert row.source_line == 2


def test_latest_wins_replaces_the_stored_row_when_the_mapping_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    mapping_file = write_text(
        tmp_path / "m.yaml", "table: orders\non_duplicate: latest_wins\nidentity: identity\n"
    )
    mapping = load_mapping(mapping_file)
    ingest_file(
        orders_csv(
            tmp_path / "a.csv",
            "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
            "O2,C1,2025-03-02T10:00:00Z,5,CNY,paid",
        ),
        settings,
        mapping=mapping,
        now=NOW,
    )
    report = ingest_file(
        orders_csv(tmp_path / "b.csv", "O1,C1,2025-03-01T10:00:00Z,10,CNY,refunded"),
        settings,
        mapping=mapping,
        now=NOW,
    )

    assert (report.accepted, report.replaced, report.quarantined) == (1, 1, 0)
    assert _rows(settings, "orders", "order_id, status") == [("O1", "refunded"), ("O2", "paid")]


def test_an_id_repeated_in_one_file_keeps_the_first_and_quarantines_a_differing_repeat(
    settings: Settings, tmp_path: Path
) -> None:
    source = orders_csv(
        tmp_path / "a.csv",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O1,C1,2025-03-01T10:00:00Z,99,CNY,paid",
    )
    report = ingest_file(source, settings, table="orders", now=NOW)

    assert (report.accepted, report.duplicates_in_batch, report.quarantined) == (1, 1, 1)
    assert report.balanced
    [row] = list_quarantine(settings)
    assert row.source_line == 4
    assert "first at line 2" in row.reason


def test_bad_values_are_quarantined_with_line_column_and_reason(
    settings: Settings, tmp_path: Path
) -> None:
    source = orders_csv(
        tmp_path / "bad.csv",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O2,C1,2025-13-45,10,CNY,paid",
        "O3,C1,2025-03-01T10:00:00Z,-5,CNY,paid",
        "O4,C1,2025-03-01T10:00:00Z,10,XYZ,paid",
        "O5,,2025-03-01T10:00:00Z,10,CNY,paid",
        "O6,C1,2099-01-01T00:00:00Z,10,CNY,paid",
        "O7,C1,2025-03-01T10:00:00Z,ten,CNY,paid",
        "O8,C1,2025-03-01T10:00:00Z,10,CNY,lost",
    )
    report = ingest_file(source, settings, table="orders", now=NOW)

    assert (report.accepted, report.quarantined) == (1, 7)
    by_line = {r.source_line: (r.column_name, r.reason) for r in list_quarantine(settings)}
    assert by_line == {
        3: ("placed_at", "placed_at: unparsable timestamp '2025-13-45'"),
        4: ("amount", "amount: negative amount '-5'"),
        5: ("currency", "currency: unknown currency 'XYZ'"),
        6: ("customer_id", "customer_id: missing customer_id"),
        7: ("placed_at", "placed_at: timestamp in the future '2099-01-01T00:00:00Z'"),
        8: ("amount", "amount: not a number 'ten'"),
        9: ("status", "status: not one of paid, refunded, cancelled 'lost'"),
    }
    assert report.quarantine_reasons["currency: unknown currency"] == 1


def test_quarantined_rows_keep_the_row_exactly_as_read(settings: Settings, tmp_path: Path) -> None:
    source = orders_csv(tmp_path / "bad.csv", "O2,C1,yesterday,10,CNY,paid")
    ingest_file(source, settings, table="orders", now=NOW)
    [row] = list_quarantine(settings)
    assert '"placed_at":"yesterday"' in row.raw
    assert row.source_file == str(source)


def test_latest_wins_keeps_the_last_version_in_a_file_and_counts_the_superseded_ones(
    settings: Settings, tmp_path: Path
) -> None:
    mapping = load_mapping(
        write_text(
            tmp_path / "m.yaml", "table: orders\non_duplicate: latest_wins\nidentity: identity\n"
        )
    )
    source = orders_csv(
        tmp_path / "a.csv",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,refunded",
    )
    report = ingest_file(source, settings, mapping=mapping, now=NOW)

    assert (report.accepted, report.superseded_in_batch, report.quarantined) == (1, 1, 0)
    assert report.balanced
    assert _rows(settings, "orders", "status") == [("refunded",)]


def test_amounts_with_thousands_separators_are_read_and_decimal_commas_are_refused(
    settings: Settings, tmp_path: Path
) -> None:
    source = orders_csv(
        tmp_path / "a.csv",
        'O1,C1,2025-03-01T10:00:00Z,"1,234.50",CNY,paid',
        'O2,C1,2025-03-01T10:00:00Z,"12,50",CNY,paid',
    )
    report = ingest_file(source, settings, table="orders", now=NOW)

    assert (report.accepted, report.quarantined) == (1, 1)
    assert [str(r[0]) for r in _rows(settings, "orders", "amount")] == ["1234.5000"]
    assert list_quarantine(settings)[0].reason == "amount: not a number '12,50'"
