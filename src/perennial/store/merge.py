"""Merge a batch of validated rows into a keyed table, exactly once.

A key already stored with the same values is a harmless re-send and is
skipped. A key stored with *different* values is never replaced silently:
under ``keep_first`` the new row goes to quarantine with the stored row's
origin, under ``latest_wins`` the stored row is replaced (its file rewritten
without it: copy-on-write). The same rules apply inside the batch. Keys the
source does not provide are derived from the row's content and its occurrence
number among identical rows, so re-ingesting a file is a no-op while genuinely
repeated rows (the same purchase twice in a day) are all kept.

All SQL here is built from the canonical schema's own column names; user
values only ever arrive as data in Parquet files, never as SQL text.
"""

# ruff: noqa: S608 - SQL text is built only from schema column names (see docstring)
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from perennial.schema.tables import Table
from perennial.store.warehouse import Transaction

__all__ = ["MergeResult", "merge_rows"]

_SEP = "chr(31)"


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


def merge_rows(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    table: Table,
    staged: list[str],
    *,
    derive_key: bool,
    latest_wins: bool,
    source_file: str,
    committed_at: datetime,
) -> MergeResult:
    """Merge the staged Parquet files (canonical columns + ``_source_line``) into ``table``."""
    key = _quoted(table.key)
    _load_incoming(con, table, staged, derive_key=derive_key)
    order = "DESC" if latest_wins else "ASC"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT i.*, row_number() OVER (PARTITION BY {key} ORDER BY _source_line {order}) AS _rank
        FROM incoming i WHERE {key} IN (
            SELECT {key} FROM incoming GROUP BY {key} HAVING count(*) > 1)
    """)
    _add_content_hash(con, "ranked", table)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE batch_losers AS
        SELECT r.*, w._content AS _winner_content, w._source_line AS _winner_line
        FROM ranked r JOIN ranked w ON w.{key} = r.{key} AND w._rank = 1 WHERE r._rank > 1
    """)
    duplicates_in_batch = _count(con, "batch_losers WHERE _content = _winner_content")
    # Under latest_wins an earlier version in the same file is superseded, not a conflict.
    superseded = _count(con, "batch_losers WHERE _content <> _winner_content") if latest_wins else 0
    batch_conflicts = con.sql(f"""
        SELECT _source_line, '{table.key}: repeated in this file with other values (id '''
            || {key} || ''', first at line ' || _winner_line || ')' AS reason,
            {_row_json(table)} AS raw
        FROM batch_losers WHERE _content <> _winner_content AND NOT {latest_wins}
    """).to_arrow_table()
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW candidates AS
        SELECT i.* FROM incoming i ANTI JOIN batch_losers l USING ({key}, _source_line)
    """)
    stored = _stored_matches(con, txn, table)
    already_stored = _count(con, "stored_matches WHERE _stored_content = _content")
    conflicts = [batch_conflicts]
    replaced = 0
    if stored:
        if latest_wins:
            replaced = _drop_replaced_rows(con, txn, table)
        else:
            conflicts.append(
                con.sql(f"""
                SELECT _source_line, '{table.key}: already stored with other values (id '''
                    || {key} || ''' from ' || _stored_file || ' line ' || _stored_line || ')'
                    AS reason,
                    {_row_json(table)} AS raw
                FROM stored_matches WHERE _stored_content <> _content
            """).to_arrow_table()
            )
    skip = (
        ""
        if not stored
        else f"""
        WHERE {key} NOT IN (SELECT {key} FROM stored_matches
                            WHERE _stored_content = _content OR NOT ?)"""
    )
    columns = ", ".join(_quoted(c) for c in table.column_names)
    query = f"""
        SELECT {columns}, ? AS _batch_id, ? AS _source_file, _source_line,
               CAST(? AS TIMESTAMPTZ) AS _ingested_at
        FROM candidates {skip}
    """
    params: list[object] = [txn.batch_id, source_file, committed_at]
    if stored:
        params.append(latest_wins)
    partition = f"strftime({_quoted(table.time_column)}, '%Y-%m')" if table.time_column else None
    inserted = txn.append_query(con, table.name, query, partition_expr=partition, params=params)
    return MergeResult(
        inserted=inserted,
        duplicates_in_batch=duplicates_in_batch,
        superseded_in_batch=superseded,
        already_stored=already_stored,
        replaced=replaced,
        conflicts=pa.concat_tables([c.cast(_CONFLICT_SCHEMA) for c in conflicts]),
    )


_CONFLICT_SCHEMA = pa.schema(
    [("_source_line", pa.int64()), ("reason", pa.string()), ("raw", pa.string())]
)


def _load_incoming(
    con: duckdb.DuckDBPyConnection, table: Table, staged: list[str], *, derive_key: bool
) -> None:
    """``incoming``: the staged rows, streamed from their files (not held in memory)."""
    con.read_parquet(staged, hive_partitioning=False).to_view("staged_rows", replace=True)
    if not derive_key:
        con.execute("CREATE OR REPLACE TEMP VIEW incoming AS SELECT * FROM staged_rows")
        return
    content = _content_expression(table, exclude_key=True)
    key = _quoted(table.key)
    # The n-th identical row gets the same id in every file: re-sends dedupe, repeats stay.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT * EXCLUDE (_c) REPLACE ('h' || substr(md5(_c || {_SEP} || CAST(row_number() OVER (
                   PARTITION BY _c ORDER BY _source_line) AS VARCHAR)), 1, 24) AS {key})
        FROM (SELECT *, {content} AS _c FROM staged_rows)
    """)


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


def _add_content_hash(con: duckdb.DuckDBPyConnection, relation: str, table: Table) -> None:
    con.execute(f"ALTER TABLE {relation} ADD COLUMN _content VARCHAR")
    con.execute(f"UPDATE {relation} SET _content = {_content_expression(table)}")


def _stored_matches(con: duckdb.DuckDBPyConnection, txn: Transaction, table: Table) -> bool:
    """Join candidates to stored rows with the same key; True when there are any."""
    key = _quoted(table.key)
    existing = txn.paths(table.name)
    if not existing:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE stored_matches AS
            SELECT *, '' AS _content, '' AS _stored_content, '' AS _stored_file,
                   0 AS _stored_line, '' AS _filename FROM candidates LIMIT 0
        """)
        return False
    content = _content_expression(table)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stored_matches AS
        SELECT c.*, {_content_expression(table, prefix="c.")} AS _content,
               s._stored_content, s._stored_file, s._stored_line, s._filename
        FROM candidates c JOIN (
            SELECT {key}, {content} AS _stored_content, _source_file AS _stored_file,
                   _source_line AS _stored_line, filename AS _filename
            FROM read_parquet(?, filename = true, hive_partitioning = false)
            WHERE {key} IN (SELECT {key} FROM candidates)
        ) s USING ({key})
    """,
        [existing],
    )
    return _count(con, "stored_matches") > 0


def _drop_replaced_rows(con: duckdb.DuckDBPyConnection, txn: Transaction, table: Table) -> int:
    """Rewrite the files holding rows that the batch replaces, without those rows."""
    key = _quoted(table.key)
    changed = con.sql(
        "SELECT DISTINCT _filename FROM stored_matches WHERE _stored_content <> _content"
    ).fetchall()
    if not changed:
        return 0
    by_path = {str(txn.warehouse.root / f.path): f for f in txn.files(table.name)}
    replaced = _count(con, "stored_matches WHERE _stored_content <> _content")
    for (filename,) in changed:
        old = by_path[filename]
        target = txn.scratch_dir(f"rewrite-{uuid.uuid4().hex[:8]}") / "part.parquet"
        con.execute(
            f"""
            COPY (SELECT * FROM read_parquet(?, hive_partitioning = false) WHERE {key} NOT IN (
                SELECT {key} FROM stored_matches WHERE _stored_content <> _content))
            TO '{target}' (FORMAT parquet, COMPRESSION zstd)
        """,
            [filename],
        )
        txn.replace_files(table.name, [old], [])
        txn.adopt_file(table.name, target, old.partition)
    return replaced


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()
    return int(rows[0][0])


def _quoted(name: str | None) -> str:
    assert name is not None  # noqa: S101
    return '"' + name.replace('"', '""') + '"'
