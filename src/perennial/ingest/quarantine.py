"""The quarantine: rows that were read but not accepted, each with where and why.

Quarantined rows are kept, not dropped: the raw row as read, its file and
line, the column at fault and the reason, so the source can be fixed and the
row re-sent (re-sending is safe: accepted rows dedupe by key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from perennial.config import Settings
from perennial.store.engine import connect
from perennial.store.warehouse import Warehouse

__all__ = [
    "QUARANTINE_SCHEMA",
    "QUARANTINE_TABLE",
    "QuarantinedRow",
    "list_quarantine",
    "reason_kind",
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
_DETAIL = re.compile(r" ('|\().*$")


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
