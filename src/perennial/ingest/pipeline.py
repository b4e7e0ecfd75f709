"""Ingest one source (a file, or records in memory) into the store as one atomic batch.

read (streaming) -> validate (vectorised, two batches at a time) -> write the
table's files -> enforce the key (dedupe, conflicts) -> quarantine ->
identities -> batch log -> commit.
Everything between the first staged file and the commit is invisible to
readers; a crash anywhere leaves the store exactly as it was.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from perennial.config import Settings
from perennial.errors import IngestError
from perennial.ingest.batches import BATCHES_TABLE, batch_record
from perennial.ingest.conversions import ConversionContext
from perennial.ingest.identity_resolution import resolve_identities
from perennial.ingest.mapping import DuplicatePolicy, Mapping, identity_mapping
from perennial.ingest.quarantine import write_quarantine
from perennial.ingest.readers import RawBatch, delimiter_hint, read_source, records_batch
from perennial.ingest.records import records_mapping
from perennial.ingest.report import IngestReport
from perennial.ingest.validation import REJECTED_SCHEMA, validate_batches
from perennial.schema.tables import Kind
from perennial.store.engine import connect
from perennial.store.merge import merge_rows
from perennial.store.partitioned_writer import PartitionedWriter
from perennial.store.warehouse import Warehouse

__all__ = ["Progress", "RefusedRecord", "ingest_file", "ingest_records"]

Progress = Callable[[int], None]
"""Called with the number of source rows read so far."""


@dataclass(frozen=True)
class RefusedRecord:
    """A record refused before it reached the pipeline: where it stood, the field at fault,
    why, and the record as it was sent (text)."""

    line: int
    column: str | None
    reason: str
    raw: str


def ingest_file(
    path: Path,
    settings: Settings,
    *,
    mapping: Mapping | None = None,
    table: str | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest ``path`` into its canonical table; idempotent, atomic.

    Give either a ``mapping`` or the target ``table`` (identity mapping). ``now``
    is the clock used to reject timestamps in the future (tests pin it).
    """
    if mapping is None:
        if table is None:
            raise IngestError(str(path), "say which table the file holds, or give a mapping")
        mapping = identity_mapping(table)
    path = Path(path)
    source_columns, batches = read_source(path, mapping)
    mapping = mapping.resolved(source_columns)
    _require_columns(path, mapping, source_columns)
    return _ingest(batches, mapping, settings, source_file=str(path), now=now, progress=progress)


def ingest_records(
    records: Sequence[dict[str, Any]],
    settings: Settings,
    *,
    table: str,
    source: str,
    lines: Sequence[int] | None = None,
    on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST,
    refused: Sequence[RefusedRecord] = (),
    now: datetime | None = None,
) -> IngestReport:
    """Ingest in-memory ``records`` into ``table`` exactly as a JSON Lines file would be.

    Each record maps canonical column names to values as JSON has them (objects for JSON
    columns); they go through the same validation, key enforcement, quarantine, identity
    resolution and batch log as a file, in one atomic batch named ``source``. ``lines``
    says where each record stood in its source; given, they must never be reused under
    ``source`` (the API inbox's sequence), and a repeated ingest of the same records is
    then a no-op that quarantines nothing twice. Without them records count 1, 2, ... and
    every call quarantines its own rejects. Rows whose key a record leaves empty get a key
    derived from their content. ``refused`` are records a caller already refused (the
    API's synchronous check): they are quarantined in the same batch, with their reason.
    """
    unique_lines = lines is not None
    if lines is None:
        lines = range(1, len(records) + 1)
    if len(lines) != len(records):
        raise IngestError(source, f"{len(records)} records but {len(lines)} line numbers")
    mapping = records_mapping(table, on_duplicate)
    batch = records_batch(list(records), list(lines), list(mapping.target.column_names))
    return _ingest(
        iter([batch] if records else []),
        mapping,
        settings,
        source_file=source,
        now=now,
        refused=refused,
        skip_known_quarantine=unique_lines,
    )


def _ingest(
    batches: Iterator[RawBatch],
    mapping: Mapping,
    settings: Settings,
    *,
    source_file: str,
    now: datetime | None,
    progress: Progress | None = None,
    refused: Sequence[RefusedRecord] = (),
    skip_known_quarantine: bool = False,
) -> IngestReport:
    """The one path every source takes: validate, write, merge, quarantine, identities, log."""
    started = time.perf_counter()
    clock = now or datetime.now(UTC)
    context = ConversionContext.from_settings(settings, now=clock, timezone=mapping.timezone)
    batch_id = f"{clock:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    con = connect(settings)
    try:
        with Warehouse(settings.warehouse).transaction(batch_id) as txn:
            rejected_dir = txn.scratch_dir("rejected")
            _write_refused(refused, rejected_dir)
            writer = PartitionedWriter(
                txn,
                mapping.table,
                _file_schema(mapping),
                dictionary_columns=_repetitive_columns(mapping),
            )
            try:
                rows_read = _read_validate_write(
                    batches,
                    mapping,
                    context,
                    writer,
                    rejected_dir,
                    _lineage(batch_id, source_file, clock),
                    progress,
                )
            except BaseException:
                writer.abort()
                raise
            merged = merge_rows(
                con,
                txn,
                mapping.target,
                writer.close(),
                derive_key=mapping.derives_key(),
                latest_wins=mapping.on_duplicate is DuplicatePolicy.LATEST_WINS,
            )
            rejected_files = sorted(str(p) for p in rejected_dir.glob("*.parquet"))
            quarantined = write_quarantine(
                con,
                txn,
                rejected_files,
                merged.conflicts,
                mapping.table,
                source_file,
                clock,
                skip_known=skip_known_quarantine,
            )
            identities = resolve_identities(
                con, txn, mapping.target, clock, settings.default_phone_region
            )
            report = IngestReport(
                batch_id=batch_id,
                source_file=source_file,
                table=mapping.table,
                rows_read=rows_read + len(refused),
                accepted=merged.inserted,
                quarantined=sum(quarantined.reasons.values()),
                duplicates_in_batch=merged.duplicates_in_batch,
                already_stored=merged.already_stored + quarantined.already_quarantined,
                superseded_in_batch=merged.superseded_in_batch,
                replaced=merged.replaced,
                quarantine_reasons=quarantined.reasons,
                identity_merges=identities.merges,
                identity_conflicts=identities.conflicts,
                seconds=time.perf_counter() - started,
            )
            txn.append_arrow(BATCHES_TABLE, batch_record(report, clock))
    finally:
        con.close()
    return report


def _write_refused(refused: Sequence[RefusedRecord], rejected_dir: Path) -> None:
    """Records refused before the pipeline join the batch's own rejects (same file format)."""
    if not refused:
        return
    pl.DataFrame(
        {
            "_source_line": [r.line for r in refused],
            "column": [r.column for r in refused],
            "reason": [r.reason for r in refused],
            "raw": [r.raw for r in refused],
        },
        schema=REJECTED_SCHEMA,
    ).write_parquet(rejected_dir / "refused.parquet")


def _read_validate_write(
    batches: Iterable[RawBatch],
    mapping: Mapping,
    context: ConversionContext,
    writer: PartitionedWriter,
    rejected_dir: Path,
    lineage: list[pl.Expr],
    progress: Progress | None,
) -> int:
    """Stream the source through validation into the writer; returns the rows read."""
    rows_read = 0
    for number, (raw, validated) in enumerate(validate_batches(batches, mapping, context)):
        rows_read += raw.rows.num_rows + len(raw.broken)
        _write_accepted(writer, validated.accepted, mapping, lineage)
        if validated.rejected.height:
            validated.rejected.write_parquet(rejected_dir / f"{number:06d}.parquet")
        if progress is not None:
            progress(rows_read)
    return rows_read


def _require_columns(path: Path, mapping: Mapping, source_columns: list[str]) -> None:
    """Required canonical columns must come from somewhere (source, constant or derivation)."""
    for column in mapping.target.columns:
        provided = column.name in mapping.columns or column.name in mapping.constants
        derivable = column.name == mapping.target.key and mapping.derives_key()
        if column.required and not provided and not derivable:
            found = ", ".join(repr(c) for c in source_columns[:12])
            hint = delimiter_hint(",".join(source_columns), mapping.delimiter)
            raise IngestError(
                str(path),
                f"no source column provides required {mapping.table}.{column.name} "
                f"(found {found}); map it in a mapping file or add a constant{hint}",
                column=column.name,
            )


def _file_schema(mapping: Mapping) -> pa.Schema:
    """Files declare every column nullable: derived keys are filled in after writing."""
    return pa.schema([f.with_nullable(True) for f in mapping.target.arrow_schema()])


def _repetitive_columns(mapping: Mapping) -> list[str]:
    """Columns worth dictionary-encoding: every text column but the key (unique by definition)
    and JSON; pyarrow falls back to plain encoding where a column turns out to be unique."""
    target = mapping.target
    labels = {Kind.STRING, Kind.ENUM, Kind.CURRENCY, Kind.TIMEZONE}
    chosen = [c.name for c in target.columns if c.kind in labels and c.name != target.key]
    return [*chosen, "_batch_id", "_source_file"]


def _lineage(batch_id: str, source_file: str, clock: datetime) -> list[pl.Expr]:
    return [
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(source_file).alias("_source_file"),
        pl.col("_source_line"),
        pl.lit(clock).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    ]


def _write_accepted(
    writer: PartitionedWriter, accepted: pl.DataFrame, mapping: Mapping, lineage: list[pl.Expr]
) -> None:
    """Hand accepted rows to the writer, split by the table's month partition."""
    if accepted.height == 0:
        return
    target = mapping.target
    rows = accepted.select(*[pl.col(c) for c in target.column_names], *lineage)
    schema = _file_schema(mapping)
    if target.time_column is None:
        writer.write(None, rows.to_arrow().cast(schema))
        return
    stamp = rows.get_column(target.time_column)
    months = (stamp.dt.year() * 100 + stamp.dt.month()).alias("_month")
    parts = rows.with_columns(months).partition_by("_month", as_dict=True, include_key=False)
    for (month,), part in parts.items():
        writer.write(f"{month // 100:04d}-{month % 100:02d}", part.to_arrow().cast(schema))
