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
    "QuarantineCounts",
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


@dataclass(frozen=True)
class QuarantineCounts:
    """What :func:`write_quarantine` stored: rows per reason, and rows it left out because
    the same source line was quarantined before (``skip_known``)."""

    reasons: dict[str, int]
    already_quarantined: int = 0


def write_quarantine(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    rejected_files: list[str],
    conflicts: pa.Table,
    table: str,
    source_file: str,
    clock: datetime,
    *,
    skip_known: bool = False,
) -> QuarantineCounts:
    """Store the batch's rejected rows (streamed from the staged files); counts per reason.

    ``skip_known`` leaves out rows whose (source file, line) is already quarantined: for
    sources whose line numbers are never reused (the API inbox), so that ingesting the same
    records again (a drain retried after a crash) quarantines nothing twice.
    """
    con.register("merge_conflicts", conflicts)
    sources = [
        "SELECT _source_line, reason, raw, regexp_extract(reason, '^(\\w+):', 1) AS col "
        "FROM merge_conflicts"
    ]
    if rejected_files:
        con.read_parquet(rejected_files).to_view("rejected_rows", replace=True)
        sources.append('SELECT _source_line, reason, raw, "column" AS col FROM rejected_rows')
    union = " UNION ALL ".join(sources)
    con.execute(f"CREATE OR REPLACE TEMP TABLE quarantine_candidates AS {union}")
    candidates = _count(con, "quarantine_candidates")
    known = txn.paths(QUARANTINE_TABLE) if skip_known else []
    if known and candidates:
        con.execute(
            "DELETE FROM quarantine_candidates WHERE _source_line IN ("
            "SELECT source_line FROM read_parquet(?) WHERE source_file = ?)",
            [known, source_file],
        )
    query = """
        SELECT ? AS batch_id, ? AS table_name, ? AS source_file, _source_line AS source_line,
               nullif(col, '') AS column_name, reason, raw,
               CAST(? AS TIMESTAMPTZ) AS quarantined_at
        FROM quarantine_candidates
    """
    txn.append_query(
        con,
        QUARANTINE_TABLE,
        query,
        partition_expr=None,
        params=[txn.batch_id, table, source_file, clock],
    )
    counts = con.execute(
        "SELECT regexp_replace(reason, ?, '') AS kind, count(*) FROM quarantine_candidates "
        "GROUP BY kind ORDER BY kind",
        [_DETAIL_PATTERN],
    ).fetchall()
    con.unregister("merge_conflicts")
    reasons = {kind: int(count) for kind, count in counts}
    return QuarantineCounts(reasons, candidates - sum(reasons.values()))


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()  # noqa: S608
    return int(rows[0][0])


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
