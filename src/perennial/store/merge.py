"""Make a batch's freshly written rows obey the table's key, exactly once.

The batch's rows are already written (by ``PartitionedWriter``) when this
runs; it finds the rows that must not stay and rewrites only the files that
hold them, so the common case, a batch of new keys, costs one scan of the key
column. A key already stored with the same values is a harmless re-send and
is dropped. A key stored with *different* values is never replaced silently:
under ``keep_first`` the new row goes to quarantine with the stored row's
origin, under ``latest_wins`` the stored row is dropped instead (its file
rewritten without it: copy-on-write). Inside the batch, exact repeats are
kept once; differing repeats are quarantined (``keep_first``) or superseded
by the last one (``latest_wins``). Keys the source does not provide are
derived from the row's content and its occurrence number among identical
rows, so re-ingesting a file is a no-op while genuine repeats (the same
purchase twice in a day) are all kept.

All SQL here is built from the canonical schema's own column names; user
values only ever arrive as data in Parquet files, never as SQL text.
"""

# ruff: noqa: S608 - SQL text is built only from schema column names (see docstring)
from __future__ import annotations

import uuid
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from perennial.schema.tables import Table
from perennial.store.warehouse import DataFile, Transaction, sql_path

__all__ = ["MergeResult", "merge_rows"]

_SEP = "chr(31)"
_CONFLICT_SCHEMA = pa.schema(
    [("_source_line", pa.int64()), ("reason", pa.string()), ("raw", pa.string())]
)


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    duplicates_in_batch: int
    superseded_in_batch: int
    """Earlier versions of a key in the same file, dropped under ``latest_wins``."""
    already_stored: int
    replaced: int
    conflicts: pa.Table
    """Rows refused because their key holds other values: ``_source_line, reason, raw``."""

    @classmethod
    def empty(cls) -> MergeResult:
        return cls(0, 0, 0, 0, 0, _CONFLICT_SCHEMA.empty_table())


def merge_rows(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    table: Table,
    written: list[DataFile],
    *,
    derive_key: bool,
    latest_wins: bool,
) -> MergeResult:
    """Enforce ``table``'s key on the files this batch ``written``; returns what it did."""
    if not written:
        return MergeResult.empty()
    if derive_key:
        written = _derive_keys(con, txn, table, written)
    new_paths = [str(txn.warehouse.root / f.path) for f in written]
    new_names = {f.path for f in written}
    old_paths = [
        str(txn.warehouse.root / f.path) for f in txn.files(table.name) if f.path not in new_names
    ]
    con.read_parquet(new_paths, filename=True, hive_partitioning=False).to_view(
        "new_rows", replace=True
    )
    duplicates, superseded, batch_conflicts = _repeats_in_batch(con, table, latest_wins)
    already_stored, stored_conflicts, replaced = _matches_in_store(
        con, txn, table, old_paths, latest_wins
    )
    dropped = _drop_new_rows(con, txn, table, written)
    inserted = sum(f.rows for f in written) - dropped
    return MergeResult(
        inserted=inserted,
        duplicates_in_batch=duplicates,
        superseded_in_batch=superseded,
        already_stored=already_stored,
        replaced=replaced,
        conflicts=pa.concat_tables(
            [c.cast(_CONFLICT_SCHEMA) for c in (batch_conflicts, stored_conflicts)]
        ),
    )


def _repeats_in_batch(
    con: duckdb.DuckDBPyConnection, table: Table, latest_wins: bool
) -> tuple[int, int, pa.Table]:
    """Rows whose key repeats in the batch: all but one (first, or last if latest wins) lose."""
    key = _quoted(table.key)
    order = "DESC" if latest_wins else "ASC"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT *, {_content_expression(table)} AS _content,
               row_number() OVER (PARTITION BY {key} ORDER BY _source_line {order}) AS _rank
        FROM new_rows WHERE {key} IN (
            SELECT {key} FROM new_rows GROUP BY {key} HAVING count(*) > 1)
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE batch_losers AS
        SELECT r.*, w._content AS _winner_content, w._source_line AS _winner_line
        FROM ranked r JOIN ranked w ON w.{key} = r.{key} AND w._rank = 1 WHERE r._rank > 1
    """)
    duplicates = _count(con, "batch_losers WHERE _content = _winner_content")
    differing = _count(con, "batch_losers WHERE _content <> _winner_content")
    if latest_wins:
        return duplicates, differing, _CONFLICT_SCHEMA.empty_table()
    conflicts = con.sql(f"""
        SELECT _source_line, '{table.key}: repeated in this file with other values (id '''
            || {key} || ''', first at line ' || _winner_line || ')' AS reason,
            {_row_json(table)} AS raw
        FROM batch_losers WHERE _content <> _winner_content
    """).to_arrow_table()
    return duplicates, 0, conflicts


def _matches_in_store(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    table: Table,
    old_paths: list[str],
    latest_wins: bool,
) -> tuple[int, pa.Table, int]:
    """Surviving new rows whose key is stored: (identical count, conflicts, replaced count)."""
    key = _quoted(table.key)
    if not old_paths:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE stored_matches AS
            SELECT filename, _source_line, true AS _identical, true AS _drop_new
            FROM new_rows LIMIT 0
        """)
        return 0, _CONFLICT_SCHEMA.empty_table(), 0
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stored_matches AS
        WITH candidates AS (
            SELECT * FROM new_rows n ANTI JOIN batch_losers l USING (filename, _source_line)
        ), stored AS (
            SELECT {key}, {_content_expression(table)} AS _stored_content,
                   _source_file AS _stored_file, _source_line AS _stored_line,
                   filename AS _stored_filename
            FROM read_parquet(?, filename = true, hive_partitioning = false)
            WHERE {key} IN (SELECT {key} FROM candidates)
        )
        SELECT c.*, s.* EXCLUDE ({key}),
               {_content_expression(table, prefix="c.")} = s._stored_content AS _identical
        FROM candidates c JOIN stored s USING ({key})
    """,
        [old_paths],
    )
    con.execute("ALTER TABLE stored_matches ADD COLUMN _drop_new BOOLEAN DEFAULT true")
    if latest_wins:
        con.execute("UPDATE stored_matches SET _drop_new = _identical")
    identical = _count(con, "stored_matches WHERE _identical")
    if latest_wins:
        return identical, _CONFLICT_SCHEMA.empty_table(), _drop_replaced_rows(con, txn, table)
    conflicts = con.sql(f"""
        SELECT _source_line, '{table.key}: already stored with other values (id '''
            || {key} || ''' from ' || _stored_file || ' line ' || _stored_line || ')'
            AS reason, {_row_json(table)} AS raw
        FROM stored_matches WHERE NOT _identical
    """).to_arrow_table()
    return identical, conflicts, 0


def _drop_replaced_rows(con: duckdb.DuckDBPyConnection, txn: Transaction, table: Table) -> int:
    """Under ``latest_wins``: rewrite the stored files holding replaced rows, without them."""
    key = _quoted(table.key)
    changed = con.execute(
        "SELECT DISTINCT _stored_filename FROM stored_matches WHERE NOT _identical"
    ).fetchall()
    by_path = {str(txn.warehouse.root / f.path): f for f in txn.files(table.name)}
    for (filename,) in changed:
        _rewrite_without(
            con,
            txn,
            table.name,
            by_path[filename],
            f"{key} IN (SELECT {key} FROM stored_matches WHERE NOT _identical)",
        )
    return _count(con, "stored_matches WHERE NOT _identical")


def _drop_new_rows(
    con: duckdb.DuckDBPyConnection, txn: Transaction, table: Table, written: list[DataFile]
) -> int:
    """Remove losing rows (repeats, re-sends, refused conflicts) from the batch's own files."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dropped AS
        SELECT filename, _source_line FROM batch_losers
        UNION ALL SELECT filename, _source_line FROM stored_matches WHERE _drop_new
    """)
    by_path = {str(txn.warehouse.root / f.path): f for f in written}
    files = con.execute("SELECT DISTINCT filename FROM dropped").fetchall()
    for (filename,) in files:
        _rewrite_without(
            con,
            txn,
            table.name,
            by_path[filename],
            "_source_line IN (SELECT _source_line FROM dropped WHERE filename = "
            f"'{filename.replace(chr(39), chr(39) * 2)}')",
        )
    return _count(con, "dropped")


def _rewrite_without(
    con: duckdb.DuckDBPyConnection, txn: Transaction, table: str, old: DataFile, condition: str
) -> None:
    """Copy-on-write: ``old`` is replaced by a copy without the rows matching ``condition``."""
    source = str(txn.warehouse.root / old.path)
    target = txn.scratch_dir(f"rewrite-{uuid.uuid4().hex[:8]}") / "part.parquet"
    con.execute(
        f"COPY (SELECT * FROM read_parquet(?, hive_partitioning = false) WHERE NOT ({condition})) "
        f"TO {sql_path(target)} (FORMAT parquet, COMPRESSION zstd)",
        [source],
    )
    txn.replace_files(table, [old], [])
    txn.adopt_file(table, target, old.partition)


def _derive_keys(
    con: duckdb.DuckDBPyConnection, txn: Transaction, table: Table, written: list[DataFile]
) -> list[DataFile]:
    """Rewrite the batch's files with keys derived from content and occurrence number.

    Rows that carry a key keep it (a source may give ids for some rows only); the rest
    are numbered among the identical rows that also lack one.
    """
    key = _quoted(table.key)
    paths = [str(txn.warehouse.root / f.path) for f in written]
    content = _content_expression(table, exclude_key=True)
    existing = {f.path for f in txn.files(table.name)}
    # The n-th identical row gets the same id in every file: re-sends dedupe, repeats stay.
    query = f"""
        SELECT * EXCLUDE (_c) REPLACE (coalesce({key}, 'h' || substr(md5(_c || {_SEP} || CAST(
                   row_number() OVER (PARTITION BY _c, {key} IS NULL ORDER BY _source_line)
                   AS VARCHAR)), 1, 24)) AS {key})
        FROM (SELECT *, {content} AS _c FROM read_parquet(?, hive_partitioning = false))
    """
    partition = f"strftime({_quoted(table.time_column)}, '%Y-%m')" if table.time_column else None
    txn.append_query(con, table.name, query, partition_expr=partition, params=[paths])
    txn.replace_files(table.name, written, [])
    return [f for f in txn.files(table.name) if f.path not in existing]


def _row_json(table: Table) -> str:
    fields = ", ".join(f"{_quoted(c)} := {_quoted(c)}" for c in table.column_names)
    return f"CAST(to_json(struct_pack({fields})) AS VARCHAR)"


def _content_expression(table: Table, *, exclude_key: bool = False, prefix: str = "") -> str:
    parts = [
        f"coalesce(CAST({prefix}{_quoted(c)} AS VARCHAR), chr(0))"
        for c in table.column_names
        if not (exclude_key and c == table.key)
    ]
    return f"md5(concat_ws({_SEP}, {', '.join(parts)}))"


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()
    return int(rows[0][0])


def _quoted(name: str | None) -> str:
    assert name is not None  # noqa: S101
    return '"' + name.replace('"', '""') + '"'
