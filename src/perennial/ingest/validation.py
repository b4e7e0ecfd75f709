"""Row validation: a raw batch becomes accepted canonical rows and rejected rows with reasons.

A row is rejected for the first problem found, column by column in the
table's order; the rejected row keeps every source field as read so the
quarantine can show it and it can be fixed and re-sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from perennial.ingest.conversions import ConversionContext, Converted, convert_column, nulls
from perennial.ingest.mapping import Mapping
from perennial.ingest.readers import RawBatch
from perennial.schema.tables import Column, Table

__all__ = ["REJECTED_SCHEMA", "ValidatedBatch", "validate_batch", "validate_batches"]

REJECTED_SCHEMA = {
    "_source_line": pl.Int64,
    "column": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}


@dataclass(frozen=True)
class ValidatedBatch:
    accepted: pl.DataFrame
    """Canonical columns (the derived key still null) plus ``_source_line``."""
    rejected: pl.DataFrame
    """``REJECTED_SCHEMA``: where, which column, why, and the source row as JSON."""


def validate_batches(
    batches: Iterable[RawBatch], mapping: Mapping, context: ConversionContext, *, parallel: int = 2
) -> Iterator[tuple[RawBatch, ValidatedBatch]]:
    """Validate ``parallel`` batches at a time, yielding them in source order.

    Polars releases the GIL, so batches validate on several cores while the reader
    parses the next block; at most ``parallel`` + 1 batches are in memory.
    """
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="validate") as pool:
        in_flight: deque[tuple[RawBatch, Future[ValidatedBatch]]] = deque()
        for raw in batches:
            in_flight.append((raw, pool.submit(validate_batch, raw, mapping, context)))
            if len(in_flight) > parallel:
                done, result = in_flight.popleft()
                yield done, result.result()
        while in_flight:
            done, result = in_flight.popleft()
            yield done, result.result()


def validate_batch(batch: RawBatch, mapping: Mapping, context: ConversionContext) -> ValidatedBatch:
    """Convert and check every row of ``batch`` against ``mapping.target``."""
    source = pl.from_arrow(batch.rows)
    assert isinstance(source, pl.DataFrame)  # noqa: S101 (from_arrow of a Table)
    target = mapping.target
    values: dict[str, pl.Series] = {}
    problems: list[tuple[str, pl.Series]] = []
    for column in target.columns:
        converted = _convert(source, column, mapping, context)
        values[column.name] = converted.values.alias(column.name)
        problems.append((column.name, converted.errors))
        if column.required and not (column.name == target.key and mapping.derives_key()):
            missing = converted.values.is_null() & converted.errors.is_null()
            problems.append((column.name, _reason_where(missing, f"missing {column.name}")))
    problems.extend(_table_rules(target, values))
    problems = [(name, errors) for name, errors in problems if errors.null_count() < len(errors)]
    column_at_fault, reason = _first_problem(problems, len(source))
    accepted_mask = reason.is_null()
    accepted = pl.DataFrame(list(values.values())).with_columns(
        pl.Series("_source_line", batch.lines, pl.Int64)
    )
    rejected_mask = ~accepted_mask
    rejected = pl.DataFrame(
        {
            "_source_line": pl.Series(batch.lines, dtype=pl.Int64).filter(rejected_mask),
            "column": column_at_fault.filter(rejected_mask),
            "reason": reason.filter(rejected_mask),
            "raw": _rows_as_json(source.filter(rejected_mask)),
        },
        schema=REJECTED_SCHEMA,
    )
    broken = pl.DataFrame(
        {
            "_source_line": [b.line for b in batch.broken],
            "column": [None] * len(batch.broken),
            "reason": [b.reason for b in batch.broken],
            "raw": [b.text for b in batch.broken],
        },
        schema=REJECTED_SCHEMA,
    )
    return ValidatedBatch(accepted.filter(accepted_mask), pl.concat([rejected, broken]))


def _convert(
    source: pl.DataFrame, column: Column, mapping: Mapping, context: ConversionContext
) -> Converted:
    spec = mapping.columns.get(column.name)
    if spec is not None:
        return convert_column(source[spec.source], column, spec, context)
    if column.name in mapping.constants:
        constant = pl.Series(column.name, [mapping.constants[column.name]] * len(source))
        return convert_column(constant, column, None, context)
    empty = nulls(column.name, len(source), pl.String)
    return convert_column(empty, column, None, context)


def _table_rules(target: Table, values: dict[str, pl.Series]) -> list[tuple[str, pl.Series]]:
    """Rules over several columns of one row."""
    if target.name == "events":
        nobody = values["customer_id"].is_null() & values["anonymous_id"].is_null()
        return [("customer_id", _reason_where(nobody, "neither customer_id nor anonymous_id"))]
    return []


def _reason_where(mask: pl.Series, reason: str) -> pl.Series:
    if not mask.any():
        return nulls("reason", len(mask), pl.String)
    return pl.select(pl.when(pl.lit(mask)).then(pl.lit(reason))).to_series()


def _first_problem(problems: list[tuple[str, pl.Series]], rows: int) -> tuple[pl.Series, pl.Series]:
    """Per row, the first column with a problem and the reason (both null when none)."""
    if not problems:
        none = nulls("column", rows, pl.String)
        return none, none.alias("reason")
    frame = pl.DataFrame({f"p{i}": errors for i, (_, errors) in enumerate(problems)})
    column = pl.coalesce(
        [
            pl.when(pl.col(f"p{i}").is_not_null()).then(pl.lit(name))
            for i, (name, _) in enumerate(problems)
        ]
    )
    reason = pl.coalesce(
        [
            pl.concat_str([pl.lit(f"{name}: "), pl.col(f"p{i}")])
            for i, (name, _) in enumerate(problems)
        ]
    )
    result = frame.select(column.alias("column"), reason.alias("reason"))
    return result["column"], result["reason"]


def _rows_as_json(source: pl.DataFrame) -> pl.Series:
    if source.width == 0:
        return nulls("raw", len(source), pl.String)
    as_text = source.select(pl.all().cast(pl.String))
    return as_text.select(pl.struct(pl.all()).struct.json_encode().alias("raw"))["raw"]
