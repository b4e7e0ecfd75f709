"""The analytical store: Parquet tables with atomic, all-or-nothing commits.

Why not Delta Lake or Iceberg: both need engine plug-ins that DuckDB and Spark
fetch over the network at run time (DuckDB's ``delta``/``iceberg`` extensions,
Spark's Delta jars), which this product may not do. Plain Parquet is read by
both engines out of the box; what Parquet lacks is atomicity, which a manifest
gives us in a few hundred lines:

* Data files live under ``<warehouse>/<table>/<partition>/part-*.parquet``.
* ``<warehouse>/_manifests/<version>.json`` lists, for every table, the files
  that make up the table at that version. A version is created with an
  exclusive link (``os.link`` fails if it exists), so it appears whole or not
  at all; the newest version is the state of the store.
* A transaction stages files under ``_staging/`` (Spark and DuckDB globbing
  skip ``_``-prefixed paths), moves them into place and then writes the next
  manifest. A crash before that last step leaves only unreferenced files,
  which the next writer removes. Readers never see a half-written batch.
* One writer at a time (an exclusive ``flock``); readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.errors import StoreError

__all__ = ["DataFile", "Snapshot", "Transaction", "Warehouse", "sql_path"]

_MANIFESTS = "_manifests"
_STAGING = "_staging"
_LOCK = "_writer.lock"
_PARTITION_COLUMN = "month"


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of a table: its path relative to the warehouse root."""

    path: str
    rows: int
    partition: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The store at one committed version: for each table, its files."""

    root: Path
    version: int
    committed_at: datetime | None
    tables: dict[str, tuple[DataFile, ...]] = field(default_factory=dict)

    def files(self, table: str) -> tuple[DataFile, ...]:
        return self.tables.get(table, ())

    def paths(self, table: str, partitions: Sequence[str] | None = None) -> list[str]:
        """Absolute file paths of ``table``, optionally only the given partitions."""
        wanted = set(partitions) if partitions is not None else None
        return [
            str(self.root / f.path)
            for f in self.files(table)
            if wanted is None or f.partition in wanted
        ]

    def rows(self, table: str) -> int:
        return sum(f.rows for f in self.files(table))


class Warehouse:
    """A folder of Parquet tables versioned by manifests."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The newest committed state (or a given version); an empty store is version 0."""
        versions = self._versions()
        if version is None:
            version = versions[-1] if versions else 0
        if version == 0:
            return Snapshot(self.root, 0, None, {})
        if version not in versions:
            raise StoreError(f"{self.root}: no version {version} (have {len(versions)})")
        raw = orjson.loads((self._manifest_dir / f"{version:010d}.json").read_bytes())
        tables = {
            name: tuple(DataFile(**entry) for entry in entries)
            for name, entries in raw["tables"].items()
        }
        return Snapshot(self.root, version, datetime.fromisoformat(raw["committed_at"]), tables)

    @contextmanager
    def transaction(self, batch_id: str) -> Iterator[Transaction]:
        """Hold the writer lock, stage changes, and commit them all at once on success.

        If the body raises, nothing of the transaction becomes visible and its
        staged files are removed.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._manifest_dir.mkdir(exist_ok=True)
        with open(self.root / _LOCK, "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"{self.root}: another process is writing to the store; try again when it ends"
                ) from None
            try:
                base = self.snapshot()
                self._remove_orphans(base)
                txn = Transaction(self, base, batch_id)
                try:
                    yield txn
                    if txn.changed:
                        txn.commit()
                finally:
                    shutil.rmtree(txn.staging_dir, ignore_errors=True)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def _manifest_dir(self) -> Path:
        return self.root / _MANIFESTS

    def _versions(self) -> list[int]:
        if not self._manifest_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self._manifest_dir.glob("*.json") if p.stem.isdigit())

    def _remove_orphans(self, current: Snapshot) -> None:
        """Delete data files none of the five newest manifests references.

        These are debris of a crashed writer and files retired (by compaction or a
        replacement) more than five versions ago. Files of the five newest versions stay,
        so a reader holding a recent snapshot keeps its files; older snapshots expire.
        """
        referenced = {f.path for files in current.tables.values() for f in files}
        for version in self._versions()[-5:]:
            referenced |= {f.path for fs in self.snapshot(version).tables.values() for f in fs}
        for path in self.root.glob("*/**/*.parquet"):
            relative = path.relative_to(self.root).as_posix()
            if not relative.startswith("_") and relative not in referenced:
                path.unlink()
        shutil.rmtree(self.root / _STAGING, ignore_errors=True)


class Transaction:
    """Changes to several tables that commit together as one new version."""

    def __init__(self, warehouse: Warehouse, base: Snapshot, batch_id: str) -> None:
        self.warehouse = warehouse
        self.base = base
        self.batch_id = batch_id
        self.staging_dir = warehouse.root / _STAGING / f"{batch_id}-{uuid.uuid4().hex[:8]}"
        self.staging_dir.mkdir(parents=True)
        self._tables: dict[str, list[DataFile]] = {
            name: list(files) for name, files in base.tables.items()
        }
        self.changed = False
        self._new_folders: set[Path] = set()
        self._added: set[str] = set()

    def files(self, table: str) -> list[DataFile]:
        """The table's files as this transaction currently sees them."""
        return list(self._tables.get(table, []))

    def paths(self, table: str) -> list[str]:
        return [str(self.warehouse.root / f.path) for f in self._tables.get(table, [])]

    def scratch_dir(self, name: str) -> Path:
        """A private folder inside the staging area, removed with the transaction."""
        path = self.staging_dir / "scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def append_query(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        query: str,
        *,
        partition_expr: str | None,
        params: Sequence[object] = (),
    ) -> int:
        """Write the rows of a SQL ``query`` as new files of ``table``; returns the row count.

        ``partition_expr`` (a SQL expression over the query's columns, e.g. a month
        string) splits the files into ``<table>/<partition>/`` folders; it is not stored
        as a column. The query must only bind user values through ``params``.
        """
        out = self.staging_dir / "new" / table
        out.mkdir(parents=True, exist_ok=True)
        pattern = f"part-{self.batch_id}-{uuid.uuid4().hex[:8]}-{{i}}"
        if partition_expr is None:
            con.execute(
                f"COPY ({query}) TO {sql_path(out / (pattern.replace('{i}', '0') + '.parquet'))} "
                "(FORMAT parquet, COMPRESSION zstd)",
                params,
            )
        else:
            con.execute(
                f"COPY (SELECT *, {partition_expr} AS _partition FROM ({query})) "  # noqa: S608
                f"TO {sql_path(out)} "
                f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (_partition), "
                f"FILENAME_PATTERN '{pattern}', OVERWRITE_OR_IGNORE)",
                params,
            )
        return self.adopt_staged(table, out)

    def append_arrow(self, table: str, data: pa.Table) -> int:
        """Write an in-memory Arrow table as one new unpartitioned file of ``table``."""
        if data.num_rows == 0:
            return 0
        out = self.staging_dir / "new" / table
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            data, out / f"part-{self.batch_id}-{uuid.uuid4().hex[:8]}.parquet", compression="zstd"
        )
        return self.adopt_staged(table, out)

    def replace_files(self, table: str, old: Sequence[DataFile], new: Sequence[DataFile]) -> None:
        """Swap files of ``table`` (copy-on-write rewrites and compaction)."""
        old_paths = {f.path for f in old}
        kept = [f for f in self._tables.get(table, []) if f.path not in old_paths]
        self._tables[table] = kept + list(new)
        self.changed = True
        for path in old_paths & self._added:  # never committed: nobody can be reading it
            (self.warehouse.root / path).unlink(missing_ok=True)
            self._added.discard(path)

    def remove_all(self, table: str) -> None:
        """Drop every file of ``table`` from this version (for tables rewritten whole)."""
        self._tables[table] = []
        self.changed = True

    def commit(self) -> Snapshot:
        """Publish the next manifest atomically: the one step that makes the batch visible."""
        version = self.base.version + 1
        committed_at = datetime.now(UTC)
        manifest = {
            "version": version,
            "parent": self.base.version,
            "batch_id": self.batch_id,
            "committed_at": committed_at.isoformat(),
            "tables": {
                name: [f.__dict__ for f in files] for name, files in sorted(self._tables.items())
            },
        }
        manifest_dir = self.warehouse.root / _MANIFESTS
        temporary = manifest_dir / f".{version:010d}.{uuid.uuid4().hex}.tmp"
        temporary.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        _fsync(temporary)
        for folder in self._new_folders | {f.parent for f in self._new_folders}:
            _fsync(folder)  # the folder's entries, and its own entry in a new parent
        try:
            os.link(temporary, manifest_dir / f"{version:010d}.json")
        except FileExistsError:
            raise StoreError(
                f"{self.warehouse.root}: version {version} exists; lost a race"
            ) from None
        finally:
            temporary.unlink()
        _fsync(manifest_dir)
        return self.warehouse.snapshot(version)

    def adopt_file(self, table: str, staged: Path, partition: str | None) -> int:
        """Move one staged file into ``table`` (in ``partition``) and register it."""
        rows = int(pq.ParquetFile(staged).metadata.num_rows)
        if rows == 0:
            staged.unlink()
            return 0
        folder = f"{_PARTITION_COLUMN}={partition}" if partition else ""
        name = f"part-{self.batch_id}-{uuid.uuid4().hex[:8]}.parquet"
        relative = Path(table) / folder / name
        target = self.warehouse.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _fsync(staged)
        os.replace(staged, target)
        self._new_folders.add(target.parent)
        self._added.add(relative.as_posix())
        self._tables.setdefault(table, []).append(DataFile(relative.as_posix(), rows, partition))
        self.changed = True
        return rows

    def adopt_staged(self, table: str, staged_root: Path) -> int:
        """Move every Parquet file under ``staged_root`` into ``table``'s folder and register
        it (``<column>=<value>/`` folders become partitions); returns the rows adopted.

        Moved files are invisible until :meth:`commit` (no manifest names them); after
        a crash they are orphans that the next writer deletes.
        """
        return sum(
            self.adopt_file(table, staged, _partition_of(staged.relative_to(staged_root)))
            for staged in sorted(staged_root.rglob("*.parquet"))
        )


def sql_path(path: Path) -> str:
    """A path as a SQL string literal (``COPY ... TO`` takes no parameter): quotes doubled."""
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    """Flush a file's or folder's contents to disk: a commit must survive power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _partition_of(relative: Path) -> str | None:
    """``_partition=2024-01/part-x.parquet`` -> ``2024-01``."""
    if len(relative.parts) < 2:
        return None
    folder = relative.parts[0]
    return folder.split("=", 1)[1] if "=" in folder else folder
