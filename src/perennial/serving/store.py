"""Reading the serving store: one read-only connection per thread, reopened when refreshed.

A refresh never changes a published file; it renames a new one over it. So a
reader opens the file ``immutable`` (SQLite then takes no locks and trusts its
cache), and before each use compares the file's identity (device, inode, time,
size) with the one it opened: a new file means a new connection. A reader in
the middle of a query keeps reading the old file, which the operating system
keeps until its last reader closes it. Board data (small tables and numeric
arrays) is loaded once per file and shared by every thread.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from perennial.errors import StoreError
from perennial.serving.schema import FORMAT_VERSION

__all__ = ["FileIdentity", "Reading", "ServingStore", "ServingUnavailableError"]

T = TypeVar("T")

FileIdentity = tuple[int, int, int, int]
"""(device, inode, modification time in ns, size): changes whenever a refresh publishes."""

_REFRESH_HINT = "run `perennial serving refresh` (or `perennial lifecycle compute`)"


class ServingUnavailableError(StoreError):
    """There is no usable serving store at the configured path."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One thread's open connection and the identity of the file it reads."""

    connection: sqlite3.Connection
    identity: FileIdentity


class ServingStore:
    """The serving store at ``path``, as seen by the threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self._cache: dict[str, tuple[FileIdentity, object]] = {}

    def reading(self) -> Reading:
        """This thread's connection to the newest published file, and that file's identity.

        Use one reading for everything a request reads (rows and :meth:`cached` data):
        a later call may open a newer file and close this thread's older connection.
        Raises :class:`ServingUnavailableError` when there is no usable store.
        """
        identity = self._identity()
        held: Reading | None = getattr(self._local, "held", None)
        if held is not None and held.identity == identity:
            return held
        if held is not None:
            self._forget(held.connection)
        reading = Reading(self._open(), identity)
        self._local.held = reading
        return reading

    def connection(self) -> sqlite3.Connection:
        """Shorthand for ``reading().connection``."""
        return self.reading().connection

    def cached(
        self, name: str, load: Callable[[sqlite3.Connection], T], reading: Reading | None = None
    ) -> T:
        """``load(connection)`` once per published file, shared by every thread.

        Pass the request's ``reading`` so the data and the rows come from the same file.
        """
        reading = reading or self.reading()
        with self._lock:
            entry = self._cache.get(name)
            if entry is None or entry[0] != reading.identity:
                entry = (reading.identity, load(reading.connection))
                self._cache[name] = entry
            return entry[1]  # type: ignore[return-value]

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._cache.clear()
        for connection in opened:
            connection.close()

    def _identity(self) -> FileIdentity:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise ServingUnavailableError(
                f"there is no serving store at {self.path} yet; {_REFRESH_HINT}"
            ) from None
        return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _open(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            connection.execute("PRAGMA cache_size = -16384")
            connection.execute("PRAGMA mmap_size = 2147418112")
            row = connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError:
            connection.close()
            raise ServingUnavailableError(
                f"{self.path} is not a serving store (or is damaged); {_REFRESH_HINT}"
            ) from None
        if row is None or row[0] != FORMAT_VERSION:
            connection.close()
            raise ServingUnavailableError(
                f"{self.path} was built by another version of Perennial; {_REFRESH_HINT}"
            )
        with self._lock:
            self._opened.append(connection)
        return connection

    def _forget(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if connection in self._opened:
                self._opened.remove(connection)
        connection.close()
