"""Compaction: many small files of a partition become one.

Every ingest batch adds files to each partition it touches; after many small
batches reads slow down (one open per file). Compaction rewrites a partition's
files into one, as a normal transaction: readers see the old files or the new
one, never a mix, and the rows are the same.
"""

# ruff: noqa: S608 - SQL text is built only from schema column names (see docstring)
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import duckdb

from perennial.store.warehouse import DataFile, Transaction, Warehouse, sql_path

__all__ = ["CompactionResult", "compact"]

SMALL_FILE_ROWS = 2_000_000


@dataclass(frozen=True)
class CompactionResult:
    files_before: int
    files_after: int


def compact(warehouse: Warehouse, con: duckdb.DuckDBPyConnection) -> CompactionResult:
    """Merge each partition's small files (fewer than ``SMALL_FILE_ROWS`` rows) into one."""
    before = sum(len(files) for files in warehouse.snapshot().tables.values())
    with warehouse.transaction("compact") as txn:
        for table, files in list(txn.base.tables.items()):
            for partition, group in _small_files_by_partition(files).items():
                if len(group) > 1:
                    _rewrite(con, txn, table, partition, group)
    after = sum(len(files) for files in warehouse.snapshot().tables.values())
    return CompactionResult(before, after)


def _small_files_by_partition(files: tuple[DataFile, ...]) -> dict[str | None, list[DataFile]]:
    groups: dict[str | None, list[DataFile]] = defaultdict(list)
    for data_file in files:
        if data_file.rows < SMALL_FILE_ROWS:
            groups[data_file.partition].append(data_file)
    return groups


def _rewrite(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    table: str,
    partition: str | None,
    group: list[DataFile],
) -> None:
    target = txn.scratch_dir(f"compact-{table}-{partition}") / "part.parquet"
    paths = [str(txn.warehouse.root / f.path) for f in group]
    con.execute(
        "COPY (SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)) "
        f"TO {sql_path(target)} (FORMAT parquet, COMPRESSION zstd)",
        [paths],
    )
    txn.replace_files(table, group, [])
    txn.adopt_file(table, target, partition)
