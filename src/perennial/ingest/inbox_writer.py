"""Group commit for the inbox: many requests, one durable transaction, one disk flush.

Every acknowledged request must be on disk, and a flush costs milliseconds
whatever it carries. One thread owns the inbox writes: request handlers hand
over their entry and wait on a future while the thread commits everything
that queued up meanwhile in one transaction (SQLite: WAL with
``synchronous=FULL``, so the commit is fsynced). Under load the cost of a
flush is shared by every request that waited for it; with one client it is
one request per flush, as without grouping. One writer also spares SQLite's
lock the contention of many writing threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perennial.config import Settings
from perennial.ingest.inbox import InboxEntry, StoredAnswer, append_entries, find_answer
from perennial.store.operational import create_engine_for

__all__ = ["InboxWriter", "durable_engine"]

_log = logging.getLogger("perennial.ingest.inbox")


def durable_engine(settings: Settings) -> Engine:
    """An engine on the operational store whose commits reach the disk before they return."""
    engine = create_engine_for(settings)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _synchronous_full)
    return engine


def _synchronous_full(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


@dataclass(eq=False)
class _Pending:
    entry: InboxEntry
    future: Future[StoredAnswer] = field(default_factory=Future)


class InboxWriter:
    """Appends inbox entries from any thread; :meth:`submit`'s future resolves once the
    entry is durable (or is the earlier answer for a repeated idempotency key)."""

    def __init__(self, settings: Settings, *, max_group: int = 512) -> None:
        self._engine = durable_engine(settings)
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._inline = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop; later submits write on the caller's thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        self._engine.dispose()

    def submit(self, entry: InboxEntry) -> Future[StoredAnswer]:
        pending = _Pending(entry)
        if self._thread is None:  # not serving (scripts, tests without a lifespan)
            with self._inline:
                self._write_group([pending])
        else:
            self._queue.put(pending)
        return pending.future

    def append(self, entry: InboxEntry) -> StoredAnswer:
        """:meth:`submit` and wait."""
        return self.submit(entry).result()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self._max_group:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                group.append(following)
            self._write_group(group)
            if stopping:
                return

    def _write_group(self, group: list[_Pending]) -> None:
        firsts, repeats = _split_repeats(group)
        try:
            with self._engine.begin() as connection:
                append_entries(connection, [p.entry for p in firsts])
        except sa.exc.IntegrityError:
            for pending in firsts:  # a key stored earlier: find out which, one by one
                self._write_one(pending)
        except Exception as error:  # every waiter must hear about it
            _log.exception("inbox write failed for %d requests", len(firsts))
            for pending in group:
                pending.future.set_exception(error)
            return
        else:
            for pending in firsts:
                pending.future.set_result(_fresh(pending.entry))
        for pending, first in repeats:
            _follow(pending, first)

    def _write_one(self, pending: _Pending) -> None:
        try:
            with self._engine.begin() as connection:
                append_entries(connection, [pending.entry])
            pending.future.set_result(_fresh(pending.entry))
        except sa.exc.IntegrityError as error:
            stored = self._stored(pending.entry)
            if stored is None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(stored)
        except Exception as error:
            pending.future.set_exception(error)

    def _stored(self, entry: InboxEntry) -> StoredAnswer | None:
        scope = entry.idempotency_scope
        if scope is None:
            return None
        with self._engine.connect() as connection:
            return find_answer(connection, *scope)


def _fresh(entry: InboxEntry) -> StoredAnswer:
    return StoredAnswer(entry.answer, entry.body_digest, replayed=False)


def _split_repeats(group: list[_Pending]) -> tuple[list[_Pending], list[tuple[_Pending, _Pending]]]:
    """Requests with an idempotency key already in this group wait for the first one."""
    firsts: list[_Pending] = []
    repeats: list[tuple[_Pending, _Pending]] = []
    seen: dict[tuple[str, str, str], _Pending] = {}
    for pending in group:
        scope = pending.entry.idempotency_scope
        if scope is not None and scope in seen:
            repeats.append((pending, seen[scope]))
            continue
        if scope is not None:
            seen[scope] = pending
        firsts.append(pending)
    return firsts, repeats


def _follow(pending: _Pending, first: _Pending) -> None:
    error = first.future.exception()
    if error is not None:
        pending.future.set_exception(error)
        return
    answer = first.future.result()
    pending.future.set_result(StoredAnswer(answer.answer, answer.body_digest, replayed=True))
