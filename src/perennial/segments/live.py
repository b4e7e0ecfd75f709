"""Keep segments live while the server runs: after every drained batch, and on the clock.

Two background threads. :class:`LiveSegments` hears of every micro-batch the
inbox drainer moves into the warehouse (the customers and event types it
touched), coalesces what arrives while a refresh runs, and re-evaluates only
those customers against only the live segments that read those event types
(or, for a changed customer record, every live segment). :class:`SegmentClock`
re-evaluates the segments whose truth moves with time alone ("no order for 45
days") every ``segment_refresh_seconds``. Both log and carry on after an error:
a failed refresh is retried by the next batch or tick, never lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime

from perennial.ingest.drain import DrainReport
from perennial.segments.service import SegmentService

__all__ = ["RECORD_CHANGE", "LiveSegments", "SegmentClock"]

RECORD_CHANGE = "customers"
"""The kind a changed customer record is reported as: it may change any attribute field."""

_log = logging.getLogger(__name__)
_AFTER_THE_INSTANT = 0.5
"""Wake this long after a known change, so the evaluation sees the instant as past."""
_SHORTEST_WAIT = 1.0


class LiveSegments:
    """Re-evaluates the touched customers of each drained batch (one refresh at a time)."""

    def __init__(self, service: SegmentService) -> None:
        self._service = service
        self._pending: deque[tuple[str, str]] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed = 0
        """Refreshes run so far (tests and benchmarks wait on it)."""

    def notify(self, report: DrainReport) -> None:
        """The drainer's listener: queue what the batch touched (never blocks the drainer)."""
        if report.touched:
            self._pending.extend(report.touched)
            self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="live-segments", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            touched = self._take()
            if not touched:
                continue
            customers = sorted({customer for customer, _ in touched})
            kinds = {kind for _, kind in touched}
            try:
                self._service.refresh_customers(
                    customers, None if RECORD_CHANGE in kinds else kinds
                )
            except Exception:
                _log.exception("live segment refresh failed for %d customers", len(customers))
            self.refreshed += 1

    def _take(self) -> list[tuple[str, str]]:
        taken: list[tuple[str, str]] = []
        while self._pending:
            taken.append(self._pending.popleft())
        return taken


class SegmentClock:
    """Refresh the live segments that read the clock every ``interval`` seconds, and at the
    next instant one of them can change when that is sooner and known (see
    :func:`perennial.segments.timing.next_change`; with a pinned clock, only the interval)."""

    def __init__(self, service: SegmentService, interval: float) -> None:
        self._service = service
        self._interval = interval
        self.next_wake: float = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="segment-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.next_wake):
            started = time.monotonic()
            self.next_wake = self._interval
            try:
                results, upcoming = self._service.refresh_time_relative()
            except Exception:
                _log.exception("scheduled segment refresh failed")
                continue
            if upcoming is not None and self._service.settings.clock is None:
                until = (upcoming - datetime.now(UTC)).total_seconds() + _AFTER_THE_INSTANT
                self.next_wake = min(self._interval, max(_SHORTEST_WAIT, until))
            if results:
                _log.info(
                    "refreshed %d time-relative segments in %.2f s",
                    len(results),
                    time.monotonic() - started,
                )
