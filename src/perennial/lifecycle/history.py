"""Stage history tables: every customer's stage each day, and the days it changed.

``stage_history`` has one row per customer, day and stage model (``customer_id,
day, stage, stage_rank, model``); ``day`` is a local calendar day and the row
describes the customer as of the end of it. ``stage_transitions`` has a row
when a customer's stage differs from the day before (``customer_id,
from_stage, to_stage, day, model``; ``from_stage`` is null when the customer was
not known the day before). Both are warehouse tables, files partitioned by the
month of ``day``, and hold several models side by side.

A model's range is written by :class:`HistoryWriter`: while days are computed,
their rows go to Parquet files in a private ``_``-prefixed folder of the
warehouse (no reader and no orphan sweep looks there), and no lock is held; then
one transaction removes the model's rows already stored for the range and
adopts the new files. A re-run replaces its range and never duplicates it, and
readers see the old range or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Self

import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot, Transaction, Warehouse

__all__ = [
    "HISTORY_SCHEMAS",
    "STAGE_HISTORY_TABLE",
    "STAGE_TRANSITIONS_TABLE",
    "HistoryWriter",
    "history_table",
]

STAGE_HISTORY_TABLE = "stage_history"
STAGE_TRANSITIONS_TABLE = "stage_transitions"

HISTORY_SCHEMAS: dict[str, pa.Schema] = {
    STAGE_HISTORY_TABLE: pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("day", pa.date32(), nullable=False),
            pa.field("stage", pa.string()),
            pa.field("stage_rank", pa.int16()),
            pa.field("model", pa.string(), nullable=False),
        ]
    ),
    STAGE_TRANSITIONS_TABLE: pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("from_stage", pa.string()),
            pa.field("to_stage", pa.string()),
            pa.field("day", pa.date32(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
        ]
    ),
}
"""The Arrow schema of each history table, as stored."""

_SPOOL = "_stage_history_spool"


def history_table(backend: Backend, snapshot: Snapshot, name: str, model: str) -> ir.Table:
    """The rows of history table ``name`` for the stage model named ``model``."""
    table = backend.table(name, snapshot, schema=HISTORY_SCHEMAS[name])
    return table.filter(table.model == model)


class HistoryWriter:
    """Collects a model's days, then replaces that range of the history in one commit.

    Use it as a context manager: leaving it removes whatever was not committed.
    """

    def __init__(self, warehouse: Warehouse, model: str) -> None:
        self.warehouse = warehouse
        self.model = model
        self._spool = warehouse.root / _SPOOL / uuid.uuid4().hex
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._files: dict[tuple[str, str], Path] = {}

    def add_day(self, day: date, profiles: pa.Table, transitions: pa.Table) -> None:
        """Spool the day's stages (``profiles``: customer_id, stage, stage_rank) and moves."""
        stages = profiles.select(["customer_id", "stage", "stage_rank"])
        self._write(STAGE_HISTORY_TABLE, day, stages)
        self._write(STAGE_TRANSITIONS_TABLE, day, transitions)

    def commit(self, start: date, end: date) -> int:
        """Replace the model's rows of ``start``..``end`` by the spooled days; the new version."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        with self.warehouse.transaction("stage-history") as txn:
            for table in HISTORY_SCHEMAS:
                self._remove_range(txn, table, start, end)
            for (table, month), path in sorted(self._files.items()):
                txn.adopt_file(table, path, month)
        return self.warehouse.snapshot().version

    def close(self) -> None:
        """Remove what was not committed (files already adopted have moved away)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        shutil.rmtree(self._spool, ignore_errors=True)
        with contextlib.suppress(OSError):  # another backfill may be spooling there
            self._spool.parent.rmdir()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, table: str, day: date, rows: pa.Table) -> None:
        schema = HISTORY_SCHEMAS[table]
        count = rows.num_rows
        columns = {
            **{name: rows.column(name) for name in rows.column_names},
            "day": pa.repeat(pa.scalar(day, pa.date32()), count),
            "model": pa.repeat(pa.scalar(self.model, pa.string()), count),
        }
        data = pa.table({field.name: columns[field.name] for field in schema}).cast(schema)
        key = (table, f"{day:%Y-%m}")
        if key not in self._writers:
            path = self._spool / table / f"{key[1]}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[key] = path
            self._writers[key] = pq.ParquetWriter(path, schema, compression="zstd")
        self._writers[key].write_table(data)

    def _remove_range(self, txn: Transaction, table: str, start: date, end: date) -> None:
        """Rewrite the files that hold the model's rows of the range without them."""
        first, last = f"{start:%Y-%m}", f"{end:%Y-%m}"
        for data_file in txn.files(table):
            month = data_file.partition
            if month is not None and not first <= month <= last:
                continue
            rows = pq.ParquetFile(self.warehouse.root / data_file.path).read()
            inside = pc.and_(
                pc.equal(rows.column("model"), self.model),
                pc.and_(
                    pc.greater_equal(rows.column("day"), pa.scalar(start, pa.date32())),
                    pc.less_equal(rows.column("day"), pa.scalar(end, pa.date32())),
                ),
            )
            if not pc.any(inside).as_py():
                continue
            kept = rows.filter(pc.invert(inside))
            txn.replace_files(table, [data_file], [])
            if kept.num_rows:
                _adopt(txn, table, kept, month)


def _adopt(txn: Transaction, table: str, rows: pa.Table, month: str | None) -> None:
    path = txn.scratch_dir(f"{table}-{uuid.uuid4().hex[:8]}") / "part.parquet"
    pq.write_table(rows, path, compression="zstd")
    txn.adopt_file(table, path, month)
