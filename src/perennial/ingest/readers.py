"""Streaming readers: a source file as batches of raw rows with their line numbers.

Every reader yields bounded batches (memory does not grow with the file) and
knows, for every row, where it stood in the file, so a quarantined row can be
found again. CSV goes through pyarrow's parallel parser when the file is
regular; when it is not (rows with a wrong field count, blank lines) the rest
of the file is read with Python's ``csv`` module, slower but exact about lines.
"""

from __future__ import annotations

import codecs
import csv
import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from perennial.errors import IngestError
from perennial.ingest.mapping import Mapping, SourceFormat

__all__ = [
    "BrokenRecord",
    "RawBatch",
    "delimiter_hint",
    "detect_format",
    "read_source",
    "records_batch",
]

BATCH_ROWS = 500_000
_BLOCK_BYTES = 32 << 20
_CSV_BLOCK_BYTES = 8 << 20
"""pyarrow parses quoted newlines several times faster in small blocks than in large."""


@dataclass(frozen=True)
class BrokenRecord:
    """A record that could not even be split into fields (goes straight to quarantine)."""

    line: int
    text: str
    reason: str


@dataclass
class RawBatch:
    """Rows as read: source column names, values as the source had them."""

    rows: pa.Table
    lines: pa.Array
    broken: list[BrokenRecord] = field(default_factory=list)


def detect_format(path: Path, mapping: Mapping) -> SourceFormat:
    if mapping.format is not None:
        return mapping.format
    if mapping.delimiter == "whitespace":
        return SourceFormat.TEXT
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return SourceFormat.PARQUET
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return SourceFormat.JSONL
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return SourceFormat.CSV
    raise IngestError(str(path), "cannot tell the format from the name; set `format:` in a mapping")


def read_source(path: Path, mapping: Mapping) -> tuple[list[str], Iterator[RawBatch]]:
    """The source's column names and a stream of its batches."""
    if not path.is_file():
        raise IngestError(str(path), "file not found")
    match detect_format(path, mapping):
        case SourceFormat.PARQUET:
            return _read_parquet(path)
        case SourceFormat.JSONL:
            return _read_jsonl(path, mapping)
        case SourceFormat.TEXT:
            return _read_text(path, mapping)
        case SourceFormat.CSV:
            return _read_csv(path, mapping)


def _read_parquet(path: Path) -> tuple[list[str], Iterator[RawBatch]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise IngestError(str(path), f"not a readable Parquet file: {error}") from None

    def batches() -> Iterator[RawBatch]:
        start = 1
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            yield RawBatch(table, _line_range(start, table.num_rows))
            start += table.num_rows

    return list(parquet.schema_arrow.names), batches()


def _line_range(first: int, count: int) -> pa.Array:
    return pa.array(np.arange(first, first + count, dtype=np.int64))


def _read_jsonl(path: Path, mapping: Mapping) -> tuple[list[str], Iterator[RawBatch]]:
    _check_encoding(path, mapping.encoding)
    wanted = [c.source for c in mapping.columns.values()] or None

    def batches() -> Iterator[RawBatch]:
        records: list[dict[str, Any]] = []
        lines: list[int] = []
        broken: list[BrokenRecord] = []
        with path.open("r", encoding=mapping.encoding, newline="\n") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                record = _parse_json_line(text, number, broken)
                if record is not None:
                    records.append(record)
                    lines.append(number)
                if len(records) >= BATCH_ROWS:
                    yield _json_batch(records, lines, broken, wanted)
                    records, lines, broken = [], [], []
        if records or broken:
            yield _json_batch(records, lines, broken, wanted)

    return _jsonl_columns(path, mapping), batches()


def _parse_json_line(text: str, number: int, broken: list[BrokenRecord]) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        broken.append(BrokenRecord(number, text.rstrip("\r\n"), f"malformed JSON ({error})"))
        return None
    if not isinstance(value, dict):
        broken.append(BrokenRecord(number, text.rstrip("\r\n"), "line is not a JSON object"))
        return None
    return value


def records_batch(
    records: list[dict[str, Any]], lines: list[int], columns: list[str] | None = None
) -> RawBatch:
    """Parsed JSON objects as one raw batch, read exactly like lines of a JSON Lines file.

    ``columns`` fixes the batch's columns (absent keys become nulls); by default they are
    the keys the records have. ``lines`` numbers the records in their source.
    """
    return _json_batch(records, lines, [], columns)


def _json_batch(
    records: list[dict[str, Any]],
    lines: list[int],
    broken: list[BrokenRecord],
    wanted: list[str] | None,
) -> RawBatch:
    names = wanted or sorted({key for record in records for key in record})
    columns = {name: [_json_scalar(r.get(name)) for r in records] for name in names}
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    if not names:
        table = pa.table({"_empty": pa.nulls(len(records), pa.string())})
    return RawBatch(table, pa.array(lines, pa.int64()), broken)


def _json_scalar(value: Any) -> str | None:
    """JSON values as source text: objects and arrays stay JSON, booleans lower-case."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def _jsonl_columns(path: Path, mapping: Mapping) -> list[str]:
    """Keys seen in the first parsable lines: what the identity mapping can bind."""
    keys: set[str] = set()
    with path.open("r", encoding=mapping.encoding, errors="replace") as handle:
        for _, text in zip(range(1000), handle, strict=False):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                keys.update(value)
    return sorted(keys)


def _read_text(path: Path, mapping: Mapping) -> tuple[list[str], Iterator[RawBatch]]:
    """Whitespace-separated text (e.g. the CDNOW log): fields split on runs of blanks."""
    _check_encoding(path, mapping.encoding)
    with path.open("r", encoding=mapping.encoding) as handle:
        first = handle.readline().split()
    names = first if mapping.header else [f"column{i + 1}" for i in range(len(first))]
    _require_mapped_columns(path, mapping, names, header_text=" ".join(first))

    def batches() -> Iterator[RawBatch]:
        skip = 1 if mapping.header else 0
        with path.open("r", encoding=mapping.encoding) as handle:
            rows = ((n, line.split()) for n, line in enumerate(handle, start=1) if n > skip)
            yield from _batches_of_split_rows(rows, names)

    return names, batches()


def _read_csv(path: Path, mapping: Mapping) -> tuple[list[str], Iterator[RawBatch]]:
    try:
        names, header_text = _csv_header(path, mapping)
    except UnicodeDecodeError:
        _check_encoding(path, mapping.encoding)
        raise
    _require_mapped_columns(path, mapping, names, header_text=header_text)
    quoted = _has_quotes(path, mapping.quote)
    return names, _read_csv_fast(path, mapping, names, multiline_possible=quoted)


def _csv_header(path: Path, mapping: Mapping) -> tuple[list[str], str]:
    with path.open("r", encoding=mapping.encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=mapping.delimiter, quotechar=mapping.quote)
        first = next(reader, [])
    text = mapping.delimiter.join(first)
    if not mapping.header:
        return [f"column{i + 1}" for i in range(len(first))], text
    return [name.strip().lstrip("\ufeff") for name in first], text


def _has_quotes(path: Path, quote: str) -> bool:
    """Without a quote character no value can span lines, so line numbers need no counting."""
    if path.stat().st_size == 0:
        return False
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(quote.encode()) >= 0


def _read_csv_fast(
    path: Path, mapping: Mapping, names: list[str], *, multiline_possible: bool
) -> Iterator[RawBatch]:
    invalid: list[str] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row.text)
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            encoding=mapping.encoding,
            block_size=_CSV_BLOCK_BYTES,
            skip_rows=1 if mapping.header else 0,
            column_names=names,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=mapping.delimiter,
            quote_char=mapping.quote,
            newlines_in_values=True,
            # A blank line then arrives as an all-null record that keeps its line (and is
            # dropped); skipped by pyarrow, it would shift every later line number.
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            # Only an empty field is missing: pyarrow's default markers ("null", "NA",
            # "N/A", "NaN", ...) are ordinary text in a customer's data (a coupon code,
            # a name) and the exact reader keeps them too.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    line = 2 if mapping.header else 1
    pending: RawBatch | None = None
    resume_line = line  # the first line not yet handed out
    try:
        for table in _grouped(reader):
            if invalid:
                break
            batch_start = line
            lines, line = _record_lines(table, line, multiline_possible)
            table, lines = _without_empty_records(table, lines)
            if pending is not None:
                yield pending
                resume_line = batch_start
            pending = RawBatch(table, lines)
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        _check_encoding(path, mapping.encoding)
        raise IngestError(str(path), f"cannot parse as CSV: {error}") from None
    if invalid:
        # A row with the wrong number of fields: only the exact reader can say which line.
        # It resumes at the first line not handed out, so nothing is read twice or lost.
        yield from _read_csv_exact(path, mapping, names, resume_line=resume_line)
    elif pending is not None:
        yield pending


def _grouped(reader: pacsv.CSVStreamingReader) -> Iterator[pa.Table]:
    """Small parser blocks (fast with quoted newlines) regrouped into validation batches."""
    group: list[pa.RecordBatch] = []
    rows = 0
    for record_batch in reader:
        group.append(record_batch)
        rows += record_batch.num_rows
        if rows >= BATCH_ROWS:
            yield pa.Table.from_batches(group)
            group, rows = [], 0
    if group:
        yield pa.Table.from_batches(group)


def _without_empty_records(table: pa.Table, lines: pa.Array) -> tuple[pa.Table, pa.Array]:
    """Drop records with no value at all (blank lines), as the exact reader does."""
    if table.num_columns == 0 or min(c.null_count for c in table.columns) == 0:
        return table, lines
    empty = pc.is_null(table.column(0))
    for column in table.columns[1:]:
        empty = pc.and_(empty, pc.is_null(column))
    keep = pc.invert(empty)
    return table.filter(keep), pc.filter(lines, keep)


def _record_lines(
    table: pa.Table, first_line: int, multiline_possible: bool
) -> tuple[pa.Array, int]:
    """Line where each record starts: one line per record plus newlines inside its fields."""
    extra = None
    for column in table.columns if multiline_possible else ():
        count = pc.fill_null(pc.count_substring(column, "\n"), 0)
        extra = count if extra is None else pc.add(extra, count)
    n = table.num_rows
    if extra is None or pc.max(extra).as_py() in (None, 0):
        return _line_range(first_line, n), first_line + n
    spans = pc.add(pc.cast(extra, pa.int64()), 1)
    ends = pc.cumulative_sum(spans)
    starts = pc.add(pc.subtract(ends, spans), first_line)
    return starts, first_line + int(ends[-1].as_py())


def _read_csv_exact(
    path: Path, mapping: Mapping, names: list[str], resume_line: int = 1
) -> Iterator[RawBatch]:
    """Python's ``csv`` module: slower, exact about lines; records before ``resume_line``
    were already handed out by the fast reader."""
    skip = 1 if mapping.header else 0
    with path.open("r", encoding=mapping.encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=mapping.delimiter, quotechar=mapping.quote)

        def rows() -> Iterator[tuple[int, list[str]]]:
            start = 1
            for record in reader:
                if reader.line_num > skip and start >= resume_line and any(record):
                    yield start, record
                start = reader.line_num + 1

        try:
            yield from _batches_of_split_rows(rows(), names)
        except csv.Error as error:
            raise IngestError(
                str(path), f"cannot parse as CSV: {error}", line=reader.line_num
            ) from None
        except UnicodeDecodeError:
            _check_encoding(path, mapping.encoding)
            raise


def _batches_of_split_rows(
    rows: Iterator[tuple[int, list[str]]], names: list[str]
) -> Iterator[RawBatch]:
    width = len(names)
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    broken: list[BrokenRecord] = []
    for number, fields in rows:
        if not fields:
            continue
        if len(fields) != width:
            text = " | ".join(fields)
            reason = f"expected {width} fields, found {len(fields)}"
            broken.append(BrokenRecord(number, text, reason))
            continue
        for values, value in zip(columns, fields, strict=True):
            values.append(value if value != "" else None)
        lines.append(number)
        if len(lines) >= BATCH_ROWS:
            yield _split_batch(names, columns, lines, broken)
            columns, lines, broken = [[] for _ in names], [], []
    if lines or broken:
        yield _split_batch(names, columns, lines, broken)


def _split_batch(
    names: list[str], columns: list[list[str | None]], lines: list[int], broken: list[BrokenRecord]
) -> RawBatch:
    table = pa.table({n: pa.array(v, pa.string()) for n, v in zip(names, columns, strict=True)})
    return RawBatch(table, pa.array(lines, pa.int64()), broken)


def _require_mapped_columns(
    path: Path, mapping: Mapping, names: list[str], *, header_text: str
) -> None:
    missing = [
        (target, spec.source)
        for target, spec in mapping.columns.items()
        if spec.source not in names
    ]
    if not missing:
        return
    target, source = missing[0]
    hint = delimiter_hint(header_text, mapping.delimiter)
    found = ", ".join(repr(n) for n in names[:12])
    raise IngestError(
        str(path),
        f"the header has no column {source!r} (mapped to {target}); found {found}{hint}",
        line=1,
        column=source,
    )


def delimiter_hint(header_text: str, delimiter: str) -> str:
    """A hint when a header split on ``delimiter`` still contains another delimiter."""
    if delimiter == "whitespace":
        return ""
    for candidate, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"), (",", "comma")):
        if candidate != delimiter and header_text.count(candidate) >= 1:
            shown = "\\t" if candidate == "\t" else candidate
            return f". The header looks {name}-separated: set `delimiter: '{shown}'` in the mapping"
    return ""


def _check_encoding(path: Path, encoding: str) -> None:
    """Fail early, naming the line, when the bytes are not in the declared encoding."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(_BLOCK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                line += chunk.count(b"\n", 0, error.start)
                hint = (
                    " (is it GBK? set `encoding: gbk` in the mapping)"
                    if encoding.lower().replace("-", "") == "utf8"
                    else ""
                )
                raise IngestError(
                    str(path),
                    f"not valid {encoding}: byte {chunk[error.start]:#04x} cannot be decoded{hint}",
                    line=line,
                ) from None
            line += chunk.count(b"\n")
