"""Where analytical expressions run: an Ibis connection to DuckDB or to Spark.

Features, stages and segments build Ibis expressions; this module is the one
place that opens the connection they run on (DESIGN.md section 2: write the
logic once, run it on the embedded engine or on a cluster). A :class:`Backend`
reads exactly the Parquet files a :class:`~perennial.store.warehouse.Snapshot`
lists, as plain files: the ``month=YYYY-MM`` folders are storage layout, never
a column. Both engines run in UTC.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.config import Settings
from perennial.errors import StoreError
from perennial.schema.tables import TABLES
from perennial.store.engine import connect
from perennial.store.warehouse import Snapshot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Ibis 12 still calls DuckDB 2's deprecated ``fetch_arrow_table``: that is Ibis's business.
# One process-wide filter, set at import, because ``warnings.catch_warnings`` around each
# call is not thread-safe: the API serves queries from several threads, and one thread's
# exit from the block removed the filter while another thread was inside it.
warnings.filterwarnings(
    "ignore",
    message=r"fetch_arrow_table\(\) is deprecated",
    category=DeprecationWarning,
)

__all__ = [
    "SPARK_LOCAL_SETTINGS",
    "Backend",
    "Engine",
    "as_nullable",
    "open_backend",
    "parse_byte_size",
]

Engine = Literal["duckdb", "spark"]

SPARK_LOCAL_SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
"""The settings a local Spark session is built with when none is passed in (STACK.md)."""


def _duckdb_timezone(zone: str, instant: Any) -> Any:
    """DuckDB's ``timezone(zone, timestamptz)``: the wall-clock time in ``zone``."""


def _spark_from_utc_timestamp(instant: Any, zone: str) -> Any:
    """Spark's ``from_utc_timestamp(ts, zone)``: the wall-clock time in ``zone``."""


def _duckdb_epoch_us(instant: Any) -> Any:
    """DuckDB's ``epoch_us(timestamptz)``: microseconds since 1970-01-01 UTC."""


def _spark_unix_micros(instant: Any) -> Any:
    """Spark's ``unix_micros(ts)``: microseconds since 1970-01-01 UTC."""


def _duckdb_json_extract_string(document: Any, path: Any) -> Any:
    """DuckDB's ``json_extract_string(json, path)``: the value at ``path`` as text."""


def _spark_get_json_object(document: Any, path: Any) -> Any:
    """Spark's ``get_json_object(json, path)``: the value at ``path`` as text."""


def _duckdb_datediff(part: Any, start: Any, end: Any) -> Any:
    """DuckDB's ``datediff(part, start, end)``: whole days from ``start`` to ``end``."""


def _spark_datediff(end: Any, start: Any) -> Any:
    """Spark's ``datediff(end, start)``: whole days from ``start`` to ``end``."""


_UTC = dt.Timestamp(timezone="UTC")
_duckdb_json_text: Any = ibis.udf.scalar.builtin(
    name="json_extract_string", signature=((dt.string, dt.string), dt.string)
)(_duckdb_json_extract_string)
_spark_json_text: Any = ibis.udf.scalar.builtin(
    name="get_json_object", signature=((dt.string, dt.string), dt.string)
)(_spark_get_json_object)
_duckdb_days_between: Any = ibis.udf.scalar.builtin(
    name="datediff", signature=((dt.string, dt.date, dt.date), dt.int64)
)(_duckdb_datediff)
_spark_days_between: Any = ibis.udf.scalar.builtin(
    name="datediff", signature=((dt.date, dt.date), dt.int64)
)(_spark_datediff)
_duckdb_epoch_micros: Any = ibis.udf.scalar.builtin(name="epoch_us", signature=((_UTC,), dt.int64))(
    _duckdb_epoch_us
)
_spark_epoch_micros: Any = ibis.udf.scalar.builtin(
    name="unix_micros", signature=((_UTC,), dt.int64)
)(_spark_unix_micros)
_duckdb_wall_clock: Any = ibis.udf.scalar.builtin(
    name="timezone", signature=((dt.string, _UTC), dt.Timestamp())
)(_duckdb_timezone)
_spark_wall_clock: Any = ibis.udf.scalar.builtin(
    name="from_utc_timestamp", signature=((_UTC, dt.string), dt.Timestamp())
)(_spark_from_utc_timestamp)


class Backend:
    """An open Ibis connection plus the reads and conversions that differ by engine.

    Use it as a context manager, or call :meth:`close`. A Spark session passed in by
    the caller stays open on close; one this backend built is stopped.
    """

    def __init__(
        self,
        engine: Engine,
        connection: Any,
        *,
        spark_session: SparkSession | None = None,
        owns_session: bool = False,
    ) -> None:
        self.engine: Engine = engine
        self.connection: Any = connection
        """The Ibis backend (``ibis.duckdb`` or ``ibis.pyspark``)."""
        self._spark = spark_session
        self._owns_session = owns_session
        self._views: list[str] = []

    def table(self, name: str, snapshot: Snapshot, *, schema: pa.Schema | None = None) -> ir.Table:
        """The rows of ``name`` in ``snapshot``: exactly its files, typed as ``schema``.

        ``schema`` defaults to the canonical table's Arrow schema with lineage columns
        (:mod:`perennial.schema.tables`); pass it for system tables such as
        ``identities``. A table without files is an empty table of that schema, so
        expressions over an empty store still run.
        """
        if schema is None:
            schema = TABLES[name].arrow_schema(with_lineage=True)
        target = ibis.schema(schema)
        paths = snapshot.paths(name)
        view = f"perennial_{name}_v{snapshot.version}_{uuid.uuid4().hex[:8]}"
        if self.engine == "duckdb":
            raw = self._duckdb_view(view, paths, schema)
        else:
            raw = self._spark_view(view, paths, schema)
        self._views.append(view)
        return _typed(raw, target)

    def local_wall_clock(self, instant: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """The wall-clock time of a UTC ``instant`` in the IANA ``zone`` (daylight saving aware).

        The one expression Ibis does not make portable; take ``.date()`` of it for
        the local calendar day.
        """
        if self.engine == "duckdb":
            return _duckdb_wall_clock(zone, instant)
        return _spark_wall_clock(instant, zone)

    def json_text(self, document: ir.StringValue, key: str) -> ir.StringValue:
        """The top-level ``key`` of a JSON object held as text, as text (null when absent).

        Numbers come back as their JSON text (``12``), strings without quotes, JSON
        null as null. ``key`` must be an identifier; it reaches the engine as a bound
        path literal (``$.key``), never as SQL text.
        """
        if not key.isidentifier():
            raise ValueError(f"a JSON key must be an identifier, got {key!r}")
        path = ibis.literal(f"$.{key}", type="string")
        if self.engine == "duckdb":
            return _duckdb_json_text(document, path)
        return _spark_json_text(document, path)

    def days_between(self, later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
        """Whole calendar days from ``earlier`` to ``later`` (negative when later is before)."""
        if self.engine == "duckdb":
            return _duckdb_days_between(ibis.literal("day"), earlier, later)
        return _spark_days_between(later, earlier)

    def register_arrow(self, name: str, data: pa.Table) -> ir.Table:
        """``data`` as the engine table ``name``, replacing any table of that name.

        Unlike an Ibis memtable, whose data Ibis 12 keeps until the connection closes
        (and which reaches Spark through pandas, turning null floats into NaN), a name
        registered again holds only its latest data.
        """
        if self.engine == "duckdb":
            self.connection.con.register(name, data)
        else:
            self._session().createDataFrame(data).createOrReplaceTempView(name)
            if name not in self._views:
                self._views.append(name)  # dropped on close, like the tables' views
        return ibis.table(ibis.schema(data.schema), name=name)

    def unregister_arrow(self, name: str) -> None:
        """Forget a table of :meth:`register_arrow`."""
        if self.engine == "duckdb":
            self.connection.con.unregister(name)
        else:
            self._session().catalog.dropTempView(name)

    def epoch_microseconds(self, instant: ir.TimestampValue) -> ir.IntegerValue:
        """Microseconds from 1970-01-01 UTC to ``instant``, as a 64-bit integer.

        Differences of these are exact and cheap. Ibis's portable ``delta`` compiles
        to DuckDB's calendar-aware ``date_diff`` on time-zone-aware timestamps, about
        90 times slower (1.9 s against 0.02 s for 10 M rows on this machine).
        """
        if self.engine == "duckdb":
            return _duckdb_epoch_micros(instant)
        return _spark_epoch_micros(instant)

    def write_parquet(
        self, expr: ir.Table, directory: Path, *, partition_by: str | None = None
    ) -> None:
        """Run ``expr`` and write its rows as Parquet files under ``directory`` (new).

        With ``partition_by`` the rows go to ``<directory>/<column>=<value>/`` folders
        (Hive style, the column left out of the files), in one pass over the input, typed
        as the engine computed them (read them back with :meth:`read_parquet`, which casts).
        Without it the file is typed exactly as the expression's schema, like
        :meth:`to_pyarrow` (DuckDB would write a sum of integers as a double), from a
        stream of batches: nothing is collected in Python either way.
        """
        if self.engine == "duckdb" and partition_by is None:
            self._write_typed_batches(expr, directory / "part-0.parquet")
        elif self.engine == "duckdb":
            directory.parent.mkdir(parents=True, exist_ok=True)
            self.connection.to_parquet(expr, directory, partition_by=partition_by)
        else:
            options = {"partitionBy": partition_by} if partition_by else {}
            self.connection.to_parquet(expr, directory, **options)

    def _write_typed_batches(self, expr: ir.Table, path: Path) -> None:
        target = _utc_schema(expr.schema().to_pyarrow())
        path.parent.mkdir(parents=True, exist_ok=True)
        # Ibis 12's own batch reader calls a method DuckDB 2 removed; the relation's works.
        self.connection._run_pre_execute_hooks(expr)
        relation = self.connection.con.sql(self.connection.compile(expr))
        batches = relation.to_arrow_reader(_WRITE_BATCH_ROWS)
        with pq.ParquetWriter(path, target, compression="zstd") as writer:
            for batch in batches:
                writer.write_table(_conform(pa.Table.from_batches([batch]), target))

    def read_parquet(self, directory: Path, schema: ibis.Schema) -> ir.Table:
        """The rows of every Parquet file under ``directory``, typed as ``schema``.

        A missing or empty directory is an empty table of ``schema``, like a
        warehouse table without files.
        """
        paths = sorted(str(path) for path in directory.rglob("*.parquet"))
        view = f"perennial_parquet_{uuid.uuid4().hex[:12]}"
        arrow_schema = schema.to_pyarrow()
        if self.engine == "duckdb":
            raw = self._duckdb_view(view, paths, arrow_schema)
        else:
            raw = self._spark_view(view, paths, arrow_schema)
        self._views.append(view)
        return _typed(raw, schema)

    def memory_limit_bytes(self) -> int | None:
        """DuckDB's memory limit in bytes; None on Spark, whose executors size themselves."""
        if self.engine != "duckdb":
            return None
        rows = self.connection.con.execute("SELECT current_setting('memory_limit')").fetchall()
        return parse_byte_size(str(rows[0][0]))

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        """Run ``expr`` and return its rows as Arrow, typed as the expression's schema.

        Timestamps come back as ``timestamp[us, tz=UTC]`` on both engines.
        """
        target = _utc_schema(expr.schema().to_pyarrow())
        if self.engine == "duckdb":
            result = self.connection.to_pyarrow(expr)
        else:
            # Ibis's own Spark path goes through pandas; Spark 4's toArrow keeps exact types.
            # The pre-execute hook is what Ibis runs first: it registers in-memory tables.
            self.connection._run_pre_execute_hooks(expr)
            frame = self.connection.raw_sql(self.connection.compile(expr))
            result = frame.toArrow()
        return _conform(result, target)

    def close(self) -> None:
        """Drop this backend's views; stop the Spark session only if this backend built it."""
        if self.engine == "duckdb":
            self.connection.disconnect()
        else:
            session = self._session()
            for view in self._views:
                session.catalog.dropTempView(view)
            if self._owns_session:
                session.stop()
        self._views.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _session(self) -> SparkSession:
        if self._spark is None:
            raise StoreError("this backend has no Spark session")
        return self._spark

    def _duckdb_view(self, view: str, paths: list[str], schema: pa.Schema) -> ir.Table:
        if not paths:
            self.connection.con.register(view, schema.empty_table())
            return self.connection.table(view)
        # hive_partitioning off: otherwise DuckDB adds a `month` column from the folders.
        return self.connection.read_parquet(paths, table_name=view, hive_partitioning=False)

    def _spark_view(self, view: str, paths: list[str], schema: pa.Schema) -> ir.Table:
        session = self._session()
        if paths:
            # Files are named one by one, so Spark infers no partition column from the folders.
            frame = session.read.parquet(*paths)
        else:
            frame = session.createDataFrame(schema.empty_table())
        frame.createOrReplaceTempView(view)
        return self.connection.table(view)


_WRITE_BATCH_ROWS = 500_000
"""Rows per batch when an expression's result streams to a Parquet file."""

_BYTE_UNITS = {
    "bytes": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_byte_size(text: str) -> int:
    """Bytes of a size as DuckDB writes one (``"14.3 GiB"``, ``"4GB"``, ``"512 bytes"``)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() or "bytes" if match else ""
    if match is None or unit not in _BYTE_UNITS:
        raise ValueError(f"not a size in bytes: {text!r}")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


def open_backend(
    settings: Settings,
    engine: Engine = "duckdb",
    spark_session: SparkSession | None = None,
) -> Backend:
    """Open the analytical engine the way the settings say.

    DuckDB: in process, memory-limited and spilling to ``<home>/tmp``, no extension
    downloads (see :func:`perennial.store.engine.connect`). Spark: the given session,
    or a local one built with :data:`SPARK_LOCAL_SETTINGS`; its time zone is set to UTC.
    """
    if engine == "duckdb":
        return Backend("duckdb", ibis.duckdb.from_connection(connect(settings)))
    if engine != "spark":
        raise ValueError(f"unknown engine {engine!r}; use 'duckdb' or 'spark'")
    owns_session = False
    if spark_session is None:
        options = (
            dict(SPARK_LOCAL_SETTINGS)
            if _is_local(settings.spark_master)
            else {"spark.sql.session.timeZone": "UTC"}
        )
        options |= settings.spark_conf
        spark_session, owns_session = _spark_session(settings.spark_master, options.items())
    connection = ibis.pyspark.connect(spark_session)  # sets the session time zone to UTC
    return Backend("spark", connection, spark_session=spark_session, owns_session=owns_session)


def _is_local(master: str) -> bool:
    return master.startswith("local")


def _spark_session(master: str, options: Iterable[tuple[str, str]]) -> tuple[SparkSession, bool]:
    """A session on ``master``; in local mode bound to the loopback interface.

    A process has one Spark session: when one is already active it is reused, and the
    second value (whether the caller owns the session and should stop it) is False.
    """
    if _is_local(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = SparkSession.builder.master(master).appName("perennial")
    for key, value in options:
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def _typed(raw: ir.Table, schema: ibis.Schema) -> ir.Table:
    """``raw``'s columns of ``schema``, cast to its types (files may be typed loosely).

    Every column comes out nullable, whatever the declared schema says: see
    :func:`as_nullable`.
    """
    return raw.select(
        *[as_nullable(raw[column], dtype).name(column) for column, dtype in schema.items()]
    )


def as_nullable(column: ir.Column, dtype: dt.DataType) -> ir.Column:
    """``column`` typed as the nullable form of ``dtype``, cast only when it is not already.

    Nullable because the engines disagree on which columns of the same Parquet files are
    non-null (Spark keeps the file's flag, DuckDB does not), and expressions built on
    both must have one schema (a union of two reads fails on a mismatch). No cast when
    the column already has the type: a cast between equal types still reaches the SQL,
    where it stops DuckDB from pushing filters on that column into the Parquet scan.
    """
    target = dtype.copy(nullable=True)
    if column.type() == target:
        return column
    return column.cast(target)


def _utc_schema(schema: pa.Schema) -> pa.Schema:
    """Naive timestamps (Spark's) are UTC instants here: say so in the type.

    Every field is declared nullable: the engines disagree on which columns of the same
    Parquet files they can prove non-null (Spark keeps the file's flag, DuckDB drops it),
    and a result must not change type with the engine that computed it.
    """
    fields = [
        (
            field.with_type(pa.timestamp("us", tz="UTC"))
            if pa.types.is_timestamp(field.type)
            else field
        ).with_nullable(True)
        for field in schema
    ]
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast an engine's result to the expected schema (column names already agree)."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            column = column.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)
