"""Records in memory take the file path: same rows, same quarantine, same identities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from perennial.config import Settings
from perennial.errors import IngestError
from perennial.ingest.mapping import DuplicatePolicy, load_mapping
from perennial.ingest.pipeline import RefusedRecord, ingest_file, ingest_records
from perennial.ingest.records import check_records
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW

EVENTS: list[dict[str, Any]] = [
    {
        "event_id": "E1",
        "customer_id": "C1",
        "event_type": "login",
        "ts": "2025-03-01T10:00:00+08:00",
        "properties": {"device": "ios", "depth": {"a": [1, 2]}},
    },
    {"customer_id": "C1", "event_type": "page_view", "ts": "2025-03-01T10:01:00Z"},
    {"customer_id": "C1", "event_type": "page_view", "ts": "2025-03-01T10:01:00Z"},
    {"anonymous_id": "dev-1", "event_type": "identify", "ts": "2025-03-01T10:02:00Z",
     "properties": {"phone": "138 1234 5678"}},
    {"event_type": "login", "ts": "2025-03-01T10:03:00Z"},
    {"customer_id": "C2", "event_type": "login", "ts": "2031-01-01T00:00:00Z"},
    {"customer_id": "C2", "event_type": "login", "ts": "yesterday"},
]  # fmt: skip


def _rows(settings: Settings, table: str, columns: str) -> list[tuple[Any, ...]]:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    if not paths:
        return []
    return duckdb.execute(f"SELECT {columns} FROM read_parquet(?) ORDER BY ALL", [paths]).fetchall()


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_records_and_the_same_lines_in_a_file_store_the_same_rows_and_reasons(
    tmp_path: Path,
) -> None:
    """Rows with an id keep it; the two identical rows without one both stay (occurrence)."""
    from_file = Settings(home=tmp_path / "file")
    from_memory = Settings(home=tmp_path / "memory")
    # A file whose every row has an event_id column: give the id-less rows null ids there
    # too, and let both sides derive them (missing_keys: derive is what records use).
    source = _jsonl(tmp_path / "events.jsonl", [{"event_id": None, **r} for r in EVENTS])
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text("table: events\nidentity: identity\nmissing_keys: derive\n")

    file_report = ingest_file(source, from_file, mapping=load_mapping(mapping_file), now=NOW)
    memory_report = ingest_records(EVENTS, from_memory, table="events", source="test", now=NOW)

    columns = "event_id, customer_id, anonymous_id, event_type, ts, properties, _source_line"
    assert _rows(from_memory, "events", columns) == _rows(from_file, "events", columns)
    assert len(_rows(from_memory, "events", "event_id")) == 4
    assert (
        memory_report.quarantine_reasons
        == file_report.quarantine_reasons
        == {
            "customer_id: neither customer_id nor anonymous_id": 1,
            "ts: timestamp in the future": 1,
            "ts: unparsable timestamp": 1,
        }
    )
    assert memory_report.identity_merges == file_report.identity_merges == 1
    assert memory_report.balanced


def test_ingesting_the_same_records_again_with_the_same_lines_changes_nothing(
    settings: Settings,
) -> None:
    refused = [RefusedRecord(900, "event_type", "event_type: wrong type", '{"event_type":5}')]
    lines = [101, 102, 103, 104, 105, 106, 107]
    first = ingest_records(
        EVENTS, settings, table="events", source="api:inbox", lines=lines, refused=refused, now=NOW
    )
    second = ingest_records(
        EVENTS, settings, table="events", source="api:inbox", lines=lines, refused=refused, now=NOW
    )

    assert (first.accepted, first.quarantined) == (4, 4)
    assert (second.accepted, second.quarantined, second.already_stored) == (0, 0, 8)
    assert first.balanced and second.balanced
    assert len(_rows(settings, "events", "event_id")) == 4
    quarantined = _rows(settings, "quarantine", "source_file, source_line, column_name")
    assert quarantined == [
        ("api:inbox", 105, "customer_id"),
        ("api:inbox", 106, "ts"),
        ("api:inbox", 107, "ts"),
        ("api:inbox", 900, "event_type"),
    ]


def test_a_later_version_of_a_key_replaces_the_stored_row_under_latest_wins(
    settings: Settings,
) -> None:
    order = {
        "order_id": "O1",
        "customer_id": "C1",
        "placed_at": "2025-03-01T10:00:00Z",
        "amount": "10",
        "currency": "CNY",
        "status": "paid",
    }
    ingest_records([order], settings, table="orders", source="t", lines=[1], now=NOW)
    refund = {**order, "status": "refunded"}
    kept = ingest_records([refund], settings, table="orders", source="t", lines=[2], now=NOW)
    replaced = ingest_records(
        [refund],
        settings,
        table="orders",
        source="t",
        lines=[2],
        on_duplicate=DuplicatePolicy.LATEST_WINS,
        now=NOW,
    )

    assert kept.quarantined == 1
    assert replaced.replaced == 1
    assert _rows(settings, "orders", "order_id, status") == [("O1", "refunded")]


def test_line_numbers_must_match_the_records(settings: Settings) -> None:
    with pytest.raises(IngestError, match="2 records but 1 line numbers"):
        ingest_records(EVENTS[:2], settings, table="events", source="t", lines=[1], now=NOW)


def test_check_records_gives_the_pipelines_reasons_by_position(settings: Settings) -> None:
    problems = check_records(EVENTS, "events", settings, now=NOW)

    assert [(p.position, p.column, p.reason.split(" '")[0]) for p in problems] == [
        (4, "customer_id", "customer_id: neither customer_id nor anonymous_id"),
        (5, "ts", "ts: timestamp in the future"),
        (6, "ts", "ts: unparsable timestamp"),
    ]
    assert check_records([], "events", settings, now=NOW) == []


def test_without_line_numbers_every_call_quarantines_its_own_rejects(settings: Settings) -> None:
    bad = [{"customer_id": "C1", "event_type": "x", "ts": "not a time"}]
    ingest_records(bad, settings, table="events", source="script", now=NOW)
    again = ingest_records(bad, settings, table="events", source="script", now=NOW)

    assert again.quarantined == 1
    assert len(_rows(settings, "quarantine", "source_line")) == 2
