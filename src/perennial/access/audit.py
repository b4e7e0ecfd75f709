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

    ``close`` drains the queue, so a clean shutdown loses nothing; a crash may lose
    the views of the last ``interval`` seconds (changes never: they use ``record``).
    """

    def __init__(self, engine: Engine, *, interval: float = 0.5, batch: int = 1000) -> None:
        self._engine = engine
        self._interval = interval
        self._batch = batch
        self._queue: queue.SimpleQueue[AuditEntry | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def add(self, entry: AuditEntry) -> None:
        self._queue.put(entry)

    def flush(self) -> None:
        """Write everything queued so far (tests and shutdown)."""
        self._write(self._drain(block=False))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while True:
            entries = self._drain(block=True)
            stop = None in entries
            self._write([entry for entry in entries if entry is not None])
            if stop:
                return

    def _drain(self, *, block: bool) -> list[AuditEntry | None]:
        entries: list[AuditEntry | None] = []
        try:
            entries.append(self._queue.get(block=block, timeout=self._interval if block else None))
            while len(entries) < self._batch:
                entries.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return entries

    def _write(self, entries: list[AuditEntry | None]) -> None:
        rows = [entry.row() for entry in entries if entry is not None]
        if not rows:
            return
        try:
            with self._engine.begin() as connection:
                connection.execute(AUDIT_LOG.insert(), rows)
        except sa.exc.SQLAlchemyError:
            _log.exception("could not write %d audit entries", len(rows))
