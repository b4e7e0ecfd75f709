"""Drain the inbox into the warehouse: micro-batches through the pipeline files take.

A drain claims the oldest pending requests (whole, up to ``max_items`` items),
ingests their items table by table with :func:`ingest_records`, then marks the
requests done. A crash after the warehouse commit and before the mark leaves
the requests pending: the next drain ingests the same items again, with the
same lines, and the table keys make that a no-op (nothing stored or
quarantined twice). :class:`InboxDrainer` runs this every second in the
server; ``perennial drain`` runs it once when no server does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from perennial.config import Settings
from perennial.errors import StoreError
from perennial.ingest.customer_updates import fold_customer_updates
from perennial.ingest.event_feed import append_feed, feed_rows
from perennial.ingest.inbox import (
    INBOX_SOURCE,
    ClaimedItem,
    claim_holders,
    claim_requests,
    claimed_items,
    complete_requests,
    prune_inbox,
    release_claims_of,
    release_requests,
)
from perennial.ingest.mapping import DuplicatePolicy
from perennial.ingest.pipeline import RefusedRecord, ingest_records
from perennial.ingest.report import IngestReport

__all__ = [
    "DRAIN_ORDER",
    "LEASE",
    "DrainReport",
    "InboxDrainer",
    "drain_inbox",
    "drain_once",
    "drainer_name",
    "ingest_claimed",
    "release_dead_drainers",
    "touched_by",
]

_log = logging.getLogger("perennial.ingest.drain")

LEASE = timedelta(seconds=60)
"""How long a claim holds before another drainer may take the requests over."""

DRAIN_ORDER: tuple[tuple[str, DuplicatePolicy], ...] = (
    ("customers", DuplicatePolicy.LATEST_WINS),
    ("events", DuplicatePolicy.KEEP_FIRST),
    ("orders", DuplicatePolicy.LATEST_WINS),
    ("order_items", DuplicatePolicy.LATEST_WINS),
)
"""Tables in drain order, each with what a re-sent key with other values does: customers,
orders and their lines are updated by later calls (a refund, a new e-mail); events are
facts, and a different event under a used ``event_id`` is quarantined."""


@dataclass(frozen=True)
class DrainReport:
    """What one drain moved: requests, items, and the ingest batch of each table."""

    requests: int = 0
    items: int = 0
    reports: tuple[IngestReport, ...] = ()
    touched: tuple[tuple[str, str], ...] = ()
    """(customer id, event type) of each event drained, (customer id, ``"customers"``) of each
    customer record: what live segments re-evaluate."""

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.reports)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.reports)

    def __add__(self, other: DrainReport) -> DrainReport:
        return DrainReport(
            self.requests + other.requests,
            self.items + other.items,
            self.reports + other.reports,
            self.touched + other.touched,
        )


def drainer_name() -> str:
    """Who holds a claim: host, process and a random part (two drainers in one process)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def release_dead_drainers(engine: Engine) -> int:
    """Give back the claims of drainers on this host whose process is gone (a server
    killed and restarted): their requests need not wait for the lease to end. Claims of
    other hosts, and of live or unknown processes, are left to their leases."""
    host = socket.gethostname()[:40]
    released = 0
    with engine.begin() as connection:
        for holder in claim_holders(connection):
            name, _, rest = holder.partition(":")
            pid = rest.partition(":")[0]
            if name == host and pid.isdigit() and not _alive(int(pid)):
                released += release_claims_of(connection, holder)
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def drain_once(
    settings: Settings,
    engine: Engine,
    *,
    owner: str,
    max_items: int = 5000,
    take_over: bool = False,
) -> DrainReport:
    """Claim, ingest and complete one micro-batch; an empty report when nothing is pending.

    A busy warehouse (another writer) gives the claim back and raises ``StoreError``; any
    other failure counts an attempt against the claimed requests and re-raises.
    """
    with engine.begin() as connection:
        claimed = claim_requests(
            connection,
            owner,
            now=datetime.now(UTC),
            lease=LEASE,
            max_items=max_items,
            take_over=take_over,
        )
    if not claimed:
        return DrainReport()
    with engine.connect() as connection:
        items = claimed_items(connection, claimed)
    try:
        reports = ingest_claimed(items, settings)
    except StoreError:
        with engine.begin() as connection:
            release_requests(connection, claimed)
        raise
    except Exception as error:
        with engine.begin() as connection:
            release_requests(connection, claimed, error=f"{type(error).__name__}: {error}")
        raise
    with engine.begin() as connection:
        complete_requests(connection, claimed, now=datetime.now(UTC))
        append_feed(connection, feed_rows(items))
    return DrainReport(len(claimed), len(items), tuple(reports), touched_by(items))


def touched_by(items: Sequence[ClaimedItem]) -> tuple[tuple[str, str], ...]:
    """The customers the accepted items are about, with the event type (or table) of each."""
    touched: dict[tuple[str, str], None] = {}
    for item in items:
        if item.reason is not None or item.table not in ("events", "customers"):
            continue
        record = orjson.loads(item.record)
        customer = record.get("customer_id") if isinstance(record, dict) else None
        if not isinstance(customer, str) or not customer:
            continue
        kind = record.get("event_type") if item.table == "events" else "customers"
        if isinstance(kind, str):
            touched[(customer, kind)] = None
    return tuple(touched)


def drain_inbox(
    settings: Settings,
    engine: Engine,
    *,
    owner: str | None = None,
    max_items: int = 5000,
    take_over: bool = False,
) -> DrainReport:
    """Drain until nothing is pending (what ``perennial drain`` runs)."""
    owner = owner or drainer_name()
    total = DrainReport()
    while True:
        report = drain_once(settings, engine, owner=owner, max_items=max_items, take_over=take_over)
        if report.requests == 0:
            return total
        total += report


def ingest_claimed(items: Sequence[ClaimedItem], settings: Settings) -> list[IngestReport]:
    """Ingest claimed items table by table: one batch per table that has any."""
    reports: list[IngestReport] = []
    for table, policy in DRAIN_ORDER:
        accepted = [i for i in items if i.table == table and i.reason is None]
        refused = [
            RefusedRecord(i.item_seq, i.column, i.reason, i.record)
            for i in items
            if i.table == table and i.reason is not None
        ]
        if not accepted and not refused:
            continue
        records: list[dict[str, Any]] = [orjson.loads(i.record) for i in accepted]
        if table == "customers":
            records = fold_customer_updates(records, settings)
        reports.append(
            ingest_records(
                records,
                settings,
                table=table,
                source=INBOX_SOURCE,
                lines=[i.item_seq for i in accepted],
                on_duplicate=policy,
                refused=refused,
            )
        )
    return reports


class InboxDrainer:
    """The server's background drainer: a micro-batch every ``interval`` seconds, and at
    once again while batches come out at least half full (a backlog). Stopping waits for
    the batch in flight; what is still pending stays in the inbox for the next start."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        interval: float = 1.0,
        max_items: int = 5000,
        retention: timedelta = timedelta(hours=24),
        listeners: Sequence[Callable[[DrainReport], None]] = (),
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._interval = interval
        self._max_items = max_items
        self._retention = retention
        self._owner = drainer_name()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at: datetime | None = None
        self._listeners = tuple(listeners)

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="inbox-drainer", daemon=True)
            self._thread.start()

    def _release_dead(self) -> None:
        try:
            released = release_dead_drainers(self._engine)
        except Exception:
            _log.exception("could not release the claims of dead drainers")
            return
        if released:
            _log.info("took back %d inbox requests claimed by a drainer that died", released)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def drain_now(self) -> DrainReport:
        """Drain everything pending now, between two background batches."""
        with self._lock:
            report = drain_inbox(
                self._settings, self._engine, owner=self._owner, max_items=self._max_items
            )
        if report.items:
            self._tell(report)
        return report

    def _run(self) -> None:
        self._release_dead()
        limit = self._max_items
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                with self._lock:
                    report = drain_once(
                        self._settings, self._engine, owner=self._owner, max_items=limit
                    )
                limit = self._max_items
            except StoreError as error:
                _log.info("inbox drain waits: %s", error)
                report = DrainReport()
            except Exception:
                _log.exception("inbox drain failed; retrying one request at a time")
                limit, report = 1, DrainReport()
            if report.items:
                self._tell(report)
                _log.info(
                    "inbox drained %d requests, %d items (%d accepted, %d quarantined)",
                    report.requests,
                    report.items,
                    report.accepted,
                    report.quarantined,
                )
            self._prune()
            if report.items < self._max_items // 2:  # no backlog: keep the cadence
                self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _tell(self, report: DrainReport) -> None:
        for listener in self._listeners:
            try:
                listener(report)
            except Exception:
                _log.exception("a drain listener failed")

    def _prune(self) -> None:
        now = datetime.now(UTC)
        if self._pruned_at is not None and now - self._pruned_at < timedelta(minutes=10):
            return
        self._pruned_at = now
        try:
            with self._engine.begin() as connection:
                prune_inbox(connection, drained_before=now - self._retention)
        except Exception:
            _log.exception("inbox prune failed")
