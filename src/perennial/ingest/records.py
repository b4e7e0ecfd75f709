"""Records in memory (the API's items) checked by the very validation files go through.

The API answers a batch item by item before it stores anything, so it needs the
pipeline's verdict on each record at once, without writing a batch: the same
mapping (:func:`records_mapping`, also used by ``ingest_records``), the same
conversions and rules, the same reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from perennial.config import Settings
from perennial.ingest.conversions import ConversionContext
from perennial.ingest.mapping import DuplicatePolicy, Mapping, identity_mapping
from perennial.ingest.readers import records_batch
from perennial.ingest.validation import validate_batch
from perennial.schema.tables import TABLES

__all__ = ["RecordProblem", "check_records", "records_mapping", "timestamp_text"]


@dataclass(frozen=True)
class RecordProblem:
    """Why the record at ``position`` (0-based, in the order given) would be quarantined."""

    position: int
    column: str | None
    reason: str
    """As the quarantine words it: ``ts: timestamp in the future '2031-01-01T00:00:00Z'``."""


def records_mapping(
    table: str, on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
) -> Mapping:
    """Every canonical column from the key of the same name; an empty key is derived."""
    target = TABLES[table]
    mapping = identity_mapping(table, on_duplicate=on_duplicate, missing_keys="derive")
    return mapping.resolved(list(target.column_names))


def check_records(
    records: Sequence[dict[str, Any]], table: str, settings: Settings, *, now: datetime
) -> list[RecordProblem]:
    """The records ingest would refuse, first problem each, in position order."""
    if not records:
        return []
    mapping = records_mapping(table)
    batch = records_batch(
        list(records), list(range(len(records))), list(mapping.target.column_names)
    )
    context = ConversionContext.from_settings(settings, now=now)
    rejected = validate_batch(batch, mapping, context).rejected.sort("_source_line")
    return [
        RecordProblem(int(line), column, str(reason))
        for line, column, reason in rejected.select("_source_line", "column", "reason").iter_rows()
    ]


def timestamp_text(at: datetime) -> str:
    """An instant as records carry it: UTC, ISO 8601 with ``Z``, to the microsecond."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
