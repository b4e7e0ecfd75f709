"""The batch log: one row per ingest, committed in the same version as its data.

Because the log row and the data commit together, "was this file ingested?"
and "what did batch X bring?" always have a true answer, even after a crash.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa

from perennial.ingest.report import IngestReport

__all__ = ["BATCHES_SCHEMA", "BATCHES_TABLE", "batch_record"]

BATCHES_TABLE = "ingest_batches"
BATCHES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("table_name", pa.string()),
        ("source_file", pa.string()),
        ("committed_at", pa.timestamp("us", tz="UTC")),
        ("rows_read", pa.int64()),
        ("accepted", pa.int64()),
        ("quarantined", pa.int64()),
        ("duplicates_in_batch", pa.int64()),
        ("already_stored", pa.int64()),
        ("superseded_in_batch", pa.int64()),
        ("replaced", pa.int64()),
        ("identity_merges", pa.int64()),
        ("identity_conflicts", pa.int64()),
        ("quarantine_reasons", pa.string()),
    ]
)


def batch_record(report: IngestReport, committed_at: datetime) -> pa.Table:
    """The log row for ``report``."""
    row = {
        "batch_id": report.batch_id,
        "table_name": report.table,
        "source_file": report.source_file,
        "committed_at": committed_at,
        "rows_read": report.rows_read,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "duplicates_in_batch": report.duplicates_in_batch,
        "already_stored": report.already_stored,
        "superseded_in_batch": report.superseded_in_batch,
        "replaced": report.replaced,
        "identity_merges": report.identity_merges,
        "identity_conflicts": report.identity_conflicts,
        "quarantine_reasons": orjson.dumps(report.quarantine_reasons).decode(),
    }
    return pa.Table.from_pylist([row], schema=BATCHES_SCHEMA)
