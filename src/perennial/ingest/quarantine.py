"""The quarantine: rows that were read but not accepted, each with where and why.

Quarantined rows are kept, not dropped: the raw row as read, its file and
line, the column at fault and the reason, so the source can be fixed and the
row re-sent (re-sending is safe: accepted rows dedupe by key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from perennial.config import Settings
from perennial.store.engine import connect
from perennial.store.warehouse import Transaction, Warehouse

__all__ = [
    "QUARANTINE_SCHEMA",
    "QUARANTINE_TABLE",
    "QuarantinedRow",
    "list_quarantine",
    "reason_kind",
    "write_quarantine",
]

QUARANTINE_TABLE = "quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("table_name", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("column_name", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)
_DETAIL_PATTERN = r" ('|\().*$"
_DETAIL = re.compile(_DETAIL_PATTERN)


@dataclass(frozen=True)
class QuarantinedRow:
    batch_id: str
    table_name: str
    source_file: str
    source_line: int
    column_name: str | None
    reason: str
    raw: str
    quarantined_at: datetime


def reason_kind(reason: str) -> str:
    """The reason without the offending value: ``placed_at: unparsable timestamp``."""
    return _DETAIL.sub("", reason)


def write_quarantine(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    rejected_files: list[str],
    conflicts: pa.Table,
    table: str,
    source_file: str,
    clock: datetime,
) -> dict[str, int]:
    """Store the batch's rejected rows (streamed from the staged files); counts per reason."""
    con.register("merge_conflicts", conflicts)
    sources = [
        "SELECT _source_line, reason, raw, regexp_extract(reason, '^(\\w+):', 1) AS col "
        "FROM merge_conflicts"
    ]
    if rejected_files:
        con.read_parquet(rejected_files).to_view("rejected_rows", replace=True)
        sources.append('SELECT _source_line, reason, raw, "column" AS col FROM rejected_rows')
    union = " UNION ALL ".join(sources)
    query = f"""
        SELECT ? AS batch_id, ? AS table_name, ? AS source_file, _source_line AS source_line,
               nullif(col, '') AS column_name, reason, raw,
               CAST(? AS TIMESTAMPTZ) AS quarantined_at
        FROM ({union})
    """  # noqa: S608 (fixed relation names)
    txn.append_query(
        con,
        QUARANTINE_TABLE,
        query,
        partition_expr=None,
        params=[txn.batch_id, table, source_file, clock],
    )
    counts = con.execute(
        f"SELECT regexp_replace(reason, ?, '') AS kind, count(*) FROM ({union}) "  # noqa: S608
        "GROUP BY kind ORDER BY kind",
        [_DETAIL_PATTERN],
    ).fetchall()
    con.unregister("merge_conflicts")
    return {kind: int(count) for kind, count in counts}


def list_quarantine(
    settings: Settings, *, batch_id: str | None = None, table: str | None = None, limit: int = 100
) -> list[QuarantinedRow]:
    """Quarantined rows, newest batch first, then by file and line."""
    snapshot = Warehouse(settings.warehouse).snapshot()
    paths = snapshot.paths(QUARANTINE_TABLE)
    if not paths:
        return []
    con = connect(settings)
    try:
        rows = con.execute(
            """
            SELECT * FROM read_parquet(?)
            WHERE (? IS NULL OR batch_id = ?) AND (? IS NULL OR table_name = ?)
            ORDER BY quarantined_at DESC, source_file, source_line
            LIMIT ?
            """,
            [paths, batch_id, batch_id, table, table, limit],
        ).fetchall()
    finally:
        con.close()
    return [QuarantinedRow(*row) for row in rows]
