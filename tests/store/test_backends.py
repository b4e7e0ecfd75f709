"""The Ibis backends read exactly a snapshot's files, typed as the canonical schema, in UTC."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pytest

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.schema.tables import TABLES
from perennial.store.backends import Engine, open_backend
from perennial.store.engine import default_memory_limit
from perennial.store.warehouse import Snapshot, Warehouse
from tests.conftest import NOW
from tests.ingest.factories import orders_csv

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# 2025-03-09: New York springs forward at 02:00 local (07:00 UTC).
DST_INSTANTS = [datetime(2025, 3, 9, 6, 30, tzinfo=UTC), datetime(2025, 3, 9, 7, 30, tzinfo=UTC)]


def _two_batches(settings: Settings, folder: Path) -> tuple[Snapshot, Snapshot]:
    ingest_file(
        orders_csv(folder / "a.csv", "O1,C1,2025-01-31T23:00:00Z,10.50,CNY,paid"),
        settings,
        table="orders",
        now=NOW,
    )
    first = Warehouse(settings.warehouse).snapshot()
    ingest_file(
        orders_csv(folder / "b.csv", "O2,C2,2025-02-01T01:00:00Z,3,CNY,refunded"),
        settings,
        table="orders",
        now=NOW,
    )
    return first, Warehouse(settings.warehouse).snapshot()


def test_duckdb_reads_exactly_the_files_of_the_snapshot_it_is_given(
    settings: Settings, tmp_path: Path
) -> None:
    first, second = _two_batches(settings, tmp_path)
    with open_backend(settings) as backend:
        old = backend.to_pyarrow(backend.table("orders", first))
        new = backend.to_pyarrow(backend.table("orders", second))
    assert old.column("order_id").to_pylist() == ["O1"]
    assert sorted(new.column("order_id").to_pylist()) == ["O1", "O2"]


def test_month_folders_are_not_a_column_and_the_schema_is_the_canonical_one(
    settings: Settings, tmp_path: Path
) -> None:
    _, snapshot = _two_batches(settings, tmp_path)
    assert {f.partition for f in snapshot.files("orders")} == {"2025-01", "2025-02"}
    with open_backend(settings) as backend:
        table = backend.to_pyarrow(backend.table("orders", snapshot))
    canonical = TABLES["orders"].arrow_schema(with_lineage=True)
    assert table.schema.names == canonical.names
    assert table.schema.types == canonical.types
    assert "month" not in table.schema.names


def test_a_table_without_files_is_empty_but_typed(settings: Settings) -> None:
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        events = backend.table("events", snapshot)
        table = backend.to_pyarrow(events.filter(events.event_type == "login"))
    assert table.num_rows == 0
    assert table.schema.types == TABLES["events"].arrow_schema().types


def test_a_system_table_is_read_with_the_schema_the_caller_gives(settings: Settings) -> None:
    schema = pa.schema([("identity_type", pa.string()), ("first_seen_at", pa.timestamp("us"))])
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        table = backend.to_pyarrow(backend.table("identities", snapshot, schema=schema))
    assert table.schema.names == ["identity_type", "first_seen_at"]
    assert table.schema.field("first_seen_at").type == pa.timestamp("us", tz="UTC")


def test_duckdb_runs_in_utc_with_the_configured_limits(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", duckdb_memory_limit="1GB", duckdb_threads=1)
    with open_backend(settings) as backend:
        con = backend.connection.con
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit is not None and limit[0].startswith(("953", "1.0"))
    assert (tmp_path / "home" / "tmp").is_dir()


def test_local_wall_clock_follows_daylight_saving_time_on_duckdb(settings: Settings) -> None:
    assert _wall_clocks(settings, "duckdb", None) == ["01:30", "03:30"]


def test_an_unknown_engine_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown engine 'flink'"):
        open_backend(settings, "flink")  # type: ignore[arg-type]


def _wall_clocks(settings: Settings, engine: Engine, spark: SparkSession | None) -> list[str]:
    instants = ibis.memtable(pa.table({"ts": pa.array(DST_INSTANTS, pa.timestamp("us", tz="UTC"))}))
    with open_backend(settings, engine, spark_session=spark) as backend:
        local = backend.local_wall_clock(instants.ts, "America/New_York")
        expr = instants.select(clock=local.strftime("%H:%M")).order_by("clock")
        return backend.to_pyarrow(expr).column("clock").to_pylist()


EPOCH_INSTANTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2025, 3, 30, 0, 59, 59, 999_999, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=UTC),
]


def _epoch_microseconds(
    settings: Settings, engine: Engine, spark: SparkSession | None
) -> list[int]:
    instants = ibis.memtable(
        pa.table({"ts": pa.array(EPOCH_INSTANTS, pa.timestamp("us", tz="UTC"))})
    )
    with open_backend(settings, engine, spark_session=spark) as backend:
        expr = instants.select(us=backend.epoch_microseconds(instants.ts)).order_by("us")
        return backend.to_pyarrow(expr).column("us").to_pylist()


def _expected_microseconds() -> list[int]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [(instant - epoch) // timedelta(microseconds=1) for instant in EPOCH_INSTANTS]


def test_epoch_microseconds_are_exact_on_duckdb(settings: Settings) -> None:
    assert _epoch_microseconds(settings, "duckdb", None) == _expected_microseconds()


@pytest.mark.spark
@pytest.mark.integration
@pytest.mark.slow
class TestSpark:
    def test_epoch_microseconds_are_exact_on_spark(
        self, settings: Settings, spark: SparkSession
    ) -> None:
        assert _epoch_microseconds(settings, "spark", spark) == _expected_microseconds()

    def test_spark_reads_the_same_rows_and_types_as_duckdb(
        self, settings: Settings, tmp_path: Path, spark: SparkSession
    ) -> None:
        first, second = _two_batches(settings, tmp_path)
        tables: dict[str, list[pa.Table]] = {}
        for engine in ("duckdb", "spark"):
            with open_backend(settings, engine, spark_session=spark) as backend:
                tables[engine] = [
                    backend.to_pyarrow(backend.table("orders", s).order_by("order_id"))
                    for s in (first, second)
                ]
        assert tables["spark"][0].num_rows == 1
        for duck, spark_table in zip(tables["duckdb"], tables["spark"], strict=True):
            assert spark_table.schema == duck.schema
            assert spark_table.equals(duck)

    def test_spark_gives_an_empty_typed_table_without_files(
        self, settings: Settings, spark: SparkSession
    ) -> None:
        snapshot = Warehouse(settings.warehouse).snapshot()
        with open_backend(settings, "spark", spark_session=spark) as backend:
            table = backend.to_pyarrow(backend.table("order_items", snapshot))
        assert table.num_rows == 0
        assert table.schema.types == TABLES["order_items"].arrow_schema().types

    def test_local_wall_clock_follows_daylight_saving_time_on_spark(
        self, settings: Settings, spark: SparkSession
    ) -> None:
        assert _wall_clocks(settings, "spark", spark) == ["01:30", "03:30"]

    def test_closing_leaves_a_session_it_did_not_build_running_without_its_views(
        self, settings: Settings, spark: SparkSession
    ) -> None:
        snapshot = Warehouse(settings.warehouse).snapshot()
        backend = open_backend(settings, "spark")  # reuses the active session
        backend.table("orders", snapshot)
        views = {t.name for t in spark.catalog.listTables() if t.name.startswith("perennial_")}
        assert views
        backend.close()
        remaining = {t.name for t in spark.catalog.listTables()}
        assert not views & remaining
        assert spark.range(3).count() == 3
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_without_a_configured_limit_duckdb_gets_sixty_percent_of_memory(tmp_path: Path) -> None:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = default_memory_limit()

    assert limit == f"{int(total * 0.6) // 2**20}MiB"
    with open_backend(Settings(home=tmp_path / "home")) as backend:
        shown = backend.connection.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert shown is not None
    amount, unit = shown[0].split()
    assert unit == "GiB" and abs(float(amount) - total * 0.6 / 2**30) < 0.1
