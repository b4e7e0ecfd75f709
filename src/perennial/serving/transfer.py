"""Moving query results from DuckDB into SQLite, in Arrow batches.

DuckDB cannot write SQLite here (its ``sqlite`` extension would be downloaded),
so rows cross in Python: DuckDB streams Arrow record batches, each becomes
columns of Python values and one ``executemany``. Memory stays at one batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb

__all__ = ["BATCH_ROWS", "copy_query"]

BATCH_ROWS = 50_000


def copy_query(
    source: duckdb.DuckDBPyConnection,
    query: str,
    target: sqlite3.Connection,
    table: str,
    *,
    params: dict[str, object] | Sequence[object] | None = None,
    batch_rows: int = BATCH_ROWS,
    transforms: Mapping[int, Callable[[Any], Any]] | None = None,
) -> int:
    """Insert every row of ``query`` into ``table`` (columns in the table's order).

    ``transforms`` maps a column's position to a function applied to each of its
    values on the way (e.g. compression). Rows whose key is already there are
    skipped (``INSERT OR IGNORE``): the warehouse promises unique keys, and one
    duplicate must not fail a refresh. Returns the number of rows read from DuckDB.
    """
    reader = source.sql(query, params=params).to_arrow_reader(batch_rows)
    statement = None
    rows = 0
    for batch in reader:
        if statement is None:
            marks = ", ".join("?" * batch.num_columns)
            statement = f"INSERT OR IGNORE INTO {table} VALUES ({marks})"  # noqa: S608 (our names)
        columns = [column.to_pylist() for column in batch.columns]
        for position, transform in (transforms or {}).items():
            columns[position] = [transform(value) for value in columns[position]]
        target.executemany(statement, zip(*columns, strict=True))
        rows += batch.num_rows
    return rows
