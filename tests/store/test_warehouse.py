"""The warehouse commits all or nothing, keeps one writer, and cleans up after crashes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.errors import StoreError
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.store.compaction import compact
from perennial.store.engine import connect
from perennial.store.warehouse import Transaction, Warehouse
from tests.conftest import NOW
from tests.ingest.factories import orders_csv


def _parquet_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.parquet") if not p.relative_to(root).parts[0].startswith("_")]


def test_an_empty_store_is_version_zero_with_no_tables(tmp_path: Path) -> None:
    snapshot = Warehouse(tmp_path / "w").snapshot()
    assert (snapshot.version, snapshot.tables) == (0, {})


def test_a_failing_transaction_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w")
    with warehouse.transaction("one") as txn:
        txn.append_arrow("things", pa.table({"x": [1, 2]}))
    with pytest.raises(RuntimeError), warehouse.transaction("two") as txn:
        txn.append_arrow("things", pa.table({"x": [3]}))
        raise RuntimeError("crash before commit")

    snapshot = warehouse.snapshot()
    assert (snapshot.version, snapshot.rows("things")) == (1, 2)


def test_files_of_a_crashed_writer_are_removed_by_the_next_writer(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w")
    with pytest.raises(RuntimeError), warehouse.transaction("crashed") as txn:
        txn.append_arrow("things", pa.table({"x": [3]}))
        raise RuntimeError("crash before commit")
    orphan = tmp_path / "w" / "things" / "part-orphan.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not referenced by any manifest")

    with warehouse.transaction("next") as txn:
        txn.append_arrow("things", pa.table({"x": [4]}))

    assert [p.name for p in _parquet_files(tmp_path / "w")] == [
        Path(f.path).name for f in warehouse.snapshot().files("things")
    ]


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w")
    with warehouse.transaction("first"):
        with pytest.raises(StoreError, match="another process is writing"):
            with Warehouse(tmp_path / "w").transaction("second"):
                pass


def test_an_ingest_that_fails_at_commit_stores_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = orders_csv(tmp_path / "orders.csv", "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid")

    def fail(_self: Transaction) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Transaction, "commit", fail)
    with pytest.raises(OSError, match="disk full"):
        ingest_file(source, settings, table="orders", now=NOW)
    monkeypatch.undo()

    assert Warehouse(settings.warehouse).snapshot().version == 0
    report = ingest_file(source, settings, table="orders", now=NOW)
    assert report.accepted == 1
    assert len(_parquet_files(settings.warehouse)) == len(
        [f for files in Warehouse(settings.warehouse).snapshot().tables.values() for f in files]
    )


def test_compaction_merges_small_files_and_keeps_every_row(
    settings: Settings, tmp_path: Path
) -> None:
    for day in range(1, 6):
        ingest_file(
            orders_csv(
                tmp_path / f"o{day}.csv", f"O{day},C1,2025-03-0{day}T10:00:00Z,{day},CNY,paid"
            ),
            settings,
            table="orders",
            now=NOW,
        )
    warehouse = Warehouse(settings.warehouse)
    before = warehouse.snapshot()
    con = connect(settings)
    result = compact(warehouse, con)
    after = warehouse.snapshot()

    assert len(before.files("orders")) == 5
    assert len(after.files("orders")) == 1
    assert result.files_after < result.files_before
    rows = con.execute(
        "SELECT order_id, amount FROM read_parquet(?) ORDER BY 1", [after.paths("orders")]
    ).fetchall()
    assert [r[0] for r in rows] == ["O1", "O2", "O3", "O4", "O5"]
    assert duckdb.execute(
        "SELECT count(*) FROM read_parquet(?)", [before.paths("orders")]
    ).fetchall() == [(5,)]
    compacted = pq.read_schema(after.paths("orders")[0]).names
    assert compacted == pq.read_schema(before.paths("orders")[0]).names
    assert "month" not in compacted


def test_a_store_whose_path_holds_a_quote_ingests_replaces_and_compacts(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "o'brien's store")
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text("table: orders\non_duplicate: latest_wins\nidentity: identity\n")
    mapping = load_mapping(mapping_file)
    ingest_file(
        orders_csv(tmp_path / "a.csv", "O1,C1,2025-03-01T10:00:00Z,1,CNY,paid"),
        settings,
        mapping=mapping,
        now=NOW,
    )
    report = ingest_file(
        orders_csv(tmp_path / "b.csv", "O1,C1,2025-03-01T10:00:00Z,1,CNY,refunded"),
        settings,
        mapping=mapping,
        now=NOW,
    )
    con = connect(settings)
    compact(Warehouse(settings.warehouse), con)

    assert report.replaced == 1
    paths = Warehouse(settings.warehouse).snapshot().paths("orders")
    assert con.execute("SELECT status FROM read_parquet(?)", [paths]).fetchall() == [("refunded",)]
