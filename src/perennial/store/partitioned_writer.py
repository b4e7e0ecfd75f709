"""Stream rows into a table: one Parquet file per partition per batch, bounded memory.

Rows arrive in batches in any order of partitions. Each partition keeps one
open ``ParquetWriter`` and a small buffer that is flushed as a row group when
it holds ``row_group_rows`` rows, so memory is bounded by ``BUFFERED_ROWS``
across all partitions, whatever the size of the source. Writing the final
files in the same pass that validates the rows saves a full re-read and
re-write of the batch (pyarrow's dataset writer would open a file per call).
Files are LZ4-compressed with dictionaries only where the caller expects few
distinct values: the fastest encoding for ingest (compaction recompresses
with zstd). Row groups are encoded and compressed on one background thread (pyarrow
releases the GIL), so writing overlaps with reading and validating the next
batch; the queue between them is short, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from perennial.store.warehouse import DataFile, Transaction

__all__ = ["PartitionedWriter"]

ROW_GROUP_ROWS = 262_144
BUFFERED_ROWS = 1_000_000
"""Flush every partition's buffer when all of them together hold this many rows."""


@dataclass
class _Partition:
    path: Path
    writer: pq.ParquetWriter
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0


class PartitionedWriter:
    """Writes rows of ``table`` (with ``schema``) into staged files, one per partition."""

    def __init__(
        self,
        txn: Transaction,
        table: str,
        schema: pa.Schema,
        *,
        dictionary_columns: list[str] | None = None,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        self._txn = txn
        self._table = table
        self._schema = schema
        self._row_group_rows = row_group_rows
        self._dictionary_columns = dictionary_columns or []
        self._folder = txn.scratch_dir(f"write-{table}")
        self._partitions: dict[str | None, _Partition] = {}
        self._buffered = 0
        self._jobs: queue.Queue[tuple[pq.ParquetWriter, pa.Table] | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"write-{table}", daemon=True)
        self._thread.start()

    def write(self, partition: str | None, rows: pa.Table) -> None:
        """Append ``rows`` (already of this writer's schema) to ``partition``."""
        self._raise_failure()
        if rows.num_rows == 0:
            return
        target = self._partitions.get(partition)
        if target is None:
            path = self._folder / f"{partition or 'all'}-{uuid.uuid4().hex[:8]}.parquet"
            writer = pq.ParquetWriter(
                path, self._schema, compression="lz4", use_dictionary=self._dictionary_columns
            )
            target = self._partitions[partition] = _Partition(path, writer)
        target.pending.append(rows)
        target.pending_rows += rows.num_rows
        self._buffered += rows.num_rows
        if target.pending_rows >= self._row_group_rows:
            self._flush(target)
        if self._buffered >= BUFFERED_ROWS:
            for other in self._partitions.values():
                self._flush(other)

    def close(self) -> list[DataFile]:
        """Flush and close every file and hand them to the transaction (not yet committed)."""
        for target in self._partitions.values():
            self._flush(target)
        self._jobs.put(None)
        self._thread.join()
        self._raise_failure()
        added: list[DataFile] = []
        for partition, target in self._partitions.items():
            target.writer.close()
            before = len(self._txn.files(self._table))
            self._txn.adopt_file(self._table, target.path, partition)
            added.extend(self._txn.files(self._table)[before:])
        self._partitions.clear()
        return added

    def abort(self) -> None:
        """Stop the background thread and close every file; the transaction discards them."""
        self._jobs.put(None)
        self._thread.join()
        for target in self._partitions.values():
            try:
                target.writer.close()
            except Exception:  # noqa: S110 - abandoning files that will be deleted anyway
                pass
        self._partitions.clear()

    def _flush(self, target: _Partition) -> None:
        if target.pending:
            self._jobs.put((target.writer, pa.concat_tables(target.pending)))
            self._buffered -= target.pending_rows
            target.pending.clear()
            target.pending_rows = 0

    def _drain(self) -> None:
        """The background thread: write queued row groups in order until told to stop."""
        while (job := self._jobs.get()) is not None:
            if self._failure is None:
                writer, rows = job
                try:
                    writer.write_table(rows, row_group_size=self._row_group_rows)
                except BaseException as error:  # re-raised in the caller's thread
                    self._failure = error

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
