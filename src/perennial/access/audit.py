"""The audit log: who changed what, and who viewed which customer's personal data.

Changes are recorded in the same transaction as the change itself (``record``), so
a change without its audit row cannot exist. Views are far more frequent (every
customer-360 read by someone who sees phone and email) and are queued and written
in batches by :class:`AuditWriter`'s thread: a view is in the log within a second,
and reading a customer does not wait for a disk flush.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perennial.access.tables import AUDIT_LOG

__all__ = ["AuditEntry", "AuditWriter", "query_audit", "record"]

_log = logging.getLogger("perennial.audit")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    """``customer.viewed``, ``user.created``, ``api_key.revoked``, ``login.failed``, ..."""
    subject_type: str
    subject_id: str
    detail: dict[str, Any] = field(default_factory=dict)
    client: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "actor": self.actor[:160],
            "action": self.action[:64],
            "subject_type": self.subject_type[:32],
            "subject_id": self.subject_id[:256],
            "detail": orjson.dumps(self.detail).decode() if self.detail else None,
            "client": None if self.client is None else self.client[:64],
        }


def record(connection: sa.Connection, entry: AuditEntry) -> None:
    """Write ``entry`` inside the caller's transaction (use for every change)."""
    connection.execute(AUDIT_LOG.insert().values(**entry.row()))


def query_audit(
    connection: sa.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` continues after the last row of a previous page."""
    query = sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.audit_id.desc()).limit(limit)
    filters = {
        AUDIT_LOG.c.actor: actor,
        AUDIT_LOG.c.action: action,
        AUDIT_LOG.c.subject_type: subject_type,
        AUDIT_LOG.c.subject_id: subject_id,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AUDIT_LOG.c.at >= since)
    if before_id is not None:
        query = query.where(AUDIT_LOG.c.audit_id < before_id)
    rows = []
    for row in connection.execute(query).mappings():
        item = dict(row)
        item["detail"] = orjson.loads(item["detail"]) if item["detail"] else {}
        at = item["at"]
        item["at"] = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        rows.append(item)
    return rows


class AuditWriter:
    """Queue of view entries written by one background thread in batches.

    ``flush`` waits until everything queued before it is written; ``close`` drains the
    queue, so a clean shutdown loses nothing. A crash may lose the views of the last
    ``interval`` seconds (changes never: they use ``record``).
    """

    def __init__(self, engine: Engine, *, interval: float = 0.5, batch: int = 1000) -> None:
        self._engine = engine
        self._interval = interval
        self._batch = batch
        self._queue: queue.SimpleQueue[AuditEntry | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def add(self, entry: AuditEntry) -> None:
        self._queue.put(entry)

    def flush(self, timeout: float = 10.0) -> None:
        """Return once every entry added before this call is written (or ``timeout``)."""
        if not self._thread.is_alive():
            self._write(self._drain_now())
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._write(self._drain_now())

    def _run(self) -> None:
        while True:
            items = self._next_items()
            self._write([item for item in items if isinstance(item, AuditEntry)])
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()
            if None in items:
                return

    def _next_items(self) -> list[AuditEntry | threading.Event | None]:
        """The first item, then what arrives within ``interval`` of it (up to ``batch``).

        Collecting for the interval, rather than writing whatever is queued at once,
        turns a busy minute's views into a hundred or so inserts of many rows instead of
        thousands of one-row transactions competing with requests for the interpreter.
        A flush or close ends the collection at once.
        """
        items: list[AuditEntry | threading.Event | None] = []
        try:
            items.append(self._queue.get(timeout=self._interval))
        except queue.Empty:
            return items
        deadline = time.monotonic() + self._interval
        while len(items) < self._batch and isinstance(items[-1], AuditEntry):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                items.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return items

    def _drain_now(self) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return entries
            if isinstance(item, AuditEntry):
                entries.append(item)
            elif isinstance(item, threading.Event):
                item.set()

    def _write(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        try:
            with self._engine.begin() as connection:
                connection.execute(AUDIT_LOG.insert(), [entry.row() for entry in entries])
        except sa.exc.SQLAlchemyError:
            _log.exception("could not write %d audit entries", len(entries))
