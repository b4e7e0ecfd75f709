"""Files on disk: Parquet parts, the customers CSV, JSON Lines, the ground truth.

Blocks arrive in order and are appended; Parquet tables are cut into parts of at
most ``max_rows`` rows so neither writing nor reading needs a whole table in
memory. A table with a single part is named ``orders.parquet``, otherwise
``orders-00000.parquet``, ``orders-00001.parquet``, ...
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.demo.dataset import DemoFile
from perennial.demo.dirty_rows import choose_dirty_rows, corrupt_json_line

__all__ = ["JsonLinesFile", "ParquetParts", "csv_bytes", "write_parquet"]

IntArray = npt.NDArray[np.int64]

_PART_NAME = re.compile(r"(-\d{5})?\.parquet")
_DICTIONARY_COLUMNS = [
    "currency", "status", "channel", "coupon_code", "category", "product_id", "event_type",
    "favourite_category", "education_status",
]  # fmt: skip


def write_parquet(table: pa.Table, path: Path) -> None:
    """One Parquet file, zstd-compressed, dictionaries only for low-cardinality columns."""
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=[c for c in _DICTIONARY_COLUMNS if c in table.column_names],
        row_group_size=1 << 20,
    )


@dataclass
class ParquetParts:
    """A canonical table written as numbered Parquet parts of at most ``max_rows`` rows.

    ``corrupt`` breaks rows of a part before it is written and returns how many;
    part numbers are the order of arrival, so files are the same for a seed.
    """

    directory: Path
    stem: str
    table: str
    max_rows: int
    corrupt: Callable[[pa.Table, int], tuple[pa.Table, int]] | None = None
    _parts: list[tuple[Path, int]] = field(default_factory=list)
    dirty_rows: int = 0

    def __post_init__(self) -> None:
        """Remove parts of an earlier run, which a smaller run would otherwise leave behind."""
        for stale in self.directory.glob(f"{self.stem}*.parquet"):
            if _PART_NAME.fullmatch(stale.name.removeprefix(self.stem)):
                stale.unlink()

    def append(self, table: pa.Table) -> None:
        for offset in range(0, max(table.num_rows, 1), self.max_rows):
            part = table.slice(offset, self.max_rows)
            number = len(self._parts)
            if self.corrupt is not None:
                part, broken = self.corrupt(part, number)
                self.dirty_rows += broken
            path = self.directory / f"{self.stem}-{number:05d}.parquet"
            write_parquet(part, path)
            self._parts.append((path, part.num_rows))

    def finish(self) -> list[DemoFile]:
        """Rename a lone part to ``<stem>.parquet``; describe every file."""
        if len(self._parts) == 1:
            path, rows = self._parts[0]
            single = self.directory / f"{self.stem}.parquet"
            path.replace(single)
            self._parts[0] = (single, rows)
        return [DemoFile(path, self.table, "parquet", rows) for path, rows in self._parts]


def csv_bytes(table: pa.Table, *, header: bool) -> bytes:
    """UTF-8 CSV: booleans as ``true``/``false``, nulls as empty fields, quotes as needed."""
    buffer = io.BytesIO()
    pl.from_arrow(table).write_csv(buffer, include_header=header)  # type: ignore[union-attr]
    return buffer.getvalue()


@dataclass
class JsonLinesFile:
    """An append-only JSON Lines file that remembers where each line starts.

    Knowing the offsets lets ``break_lines`` patch the chosen lines in place once
    the total is known, without reading the file again.
    """

    path: Path
    table: str = "events"
    _starts: list[IntArray] = field(default_factory=list)
    _size: int = 0
    dirty_rows: int = 0

    def __post_init__(self) -> None:
        self.path.write_bytes(b"")

    @property
    def rows(self) -> int:
        return sum(int(s.shape[0]) for s in self._starts)

    def append(self, lines: pa.Array) -> None:
        """Append lines built as one string array, each already ending in a newline."""
        if len(lines) == 0:
            return
        offsets_buffer, data_buffer = lines.buffers()[1:3]
        offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
            lines.offset : lines.offset + len(lines) + 1
        ].astype(np.int64)
        with self.path.open("ab") as handle:
            handle.write(memoryview(data_buffer)[offsets[0] : offsets[-1]])
        self._starts.append(self._size + offsets[:-1] - offsets[0])
        self._size += int(offsets[-1] - offsets[0])

    def break_lines(self, rng: np.random.Generator, fraction: float) -> None:
        """Break ``round(fraction * rows)`` lines in place, cycling through the kinds."""
        if not self._starts:
            return
        starts = np.concatenate(self._starts)
        ends = np.append(starts[1:], self._size)
        chosen = choose_dirty_rows(rng, starts.shape[0], fraction)
        descriptor = os.open(self.path, os.O_RDWR)
        try:
            for kind, line in enumerate(chosen):
                start, length = int(starts[line]), int(ends[line] - starts[line])
                original = os.pread(descriptor, length, start)
                os.pwrite(descriptor, corrupt_json_line(original, kind % 3), start)
        finally:
            os.close(descriptor)
        self.dirty_rows = int(chosen.shape[0])

    def describe(self) -> DemoFile:
        return DemoFile(self.path, self.table, "jsonl", self.rows)
