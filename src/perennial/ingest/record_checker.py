"""Many callers' records checked in one validation pass (group validation).

Validation is vectorised: checking 1,000 records costs little more than checking
10, because most of its cost is per call (one expression per column and rule),
not per record. Concurrent API requests each carrying a hundred items would pay
that fixed cost a hundred times over; instead their records queue here, and one
thread checks everything that queued up meanwhile, per table, in one call of
:func:`check_records`, and hands each caller its own verdicts. With one caller at
a time it is a plain call.

The clock of a group is the latest of its callers' clocks: a record is refused as
"in the future" against the time it was received or (by milliseconds) later, and
the drain, later still, never refuses a record accepted here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from perennial.config import Settings
from perennial.ingest.records import RecordProblem, check_records

__all__ = ["RecordChecker"]


@dataclass(eq=False)
class _Job:
    records: Sequence[dict[str, Any]]
    table: str
    now: datetime
    future: Future[list[RecordProblem]] = field(default_factory=Future)


class RecordChecker:
    """:meth:`check` from any thread; concurrent checks share one validation pass."""

    def __init__(self, settings: Settings, *, max_records: int = 20_000) -> None:
        self._settings = settings
        self._max_records = max_records
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="record-checker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def waiting(self) -> int:
        """How many checks are queued behind the one being run (for monitoring)."""
        return self._queue.qsize()

    def check(
        self, records: Sequence[dict[str, Any]], table: str, *, now: datetime
    ) -> list[RecordProblem]:
        """Like :func:`check_records` (positions are into ``records``)."""
        if self._thread is None or not records:
            return check_records(records, table, self._settings, now=now)
        job = _Job(records, table, now)
        self._queue.put(job)
        return job.future.result()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stopping = [first], False
            size = len(first.records)
            while size < self._max_records:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                group.append(following)
                size += len(following.records)
            for table in dict.fromkeys(job.table for job in group):
                self._check_group([job for job in group if job.table == table])
            if stopping:
                return

    def _check_group(self, jobs: list[_Job]) -> None:
        records = [record for job in jobs for record in job.records]
        try:
            problems = check_records(
                records, jobs[0].table, self._settings, now=max(job.now for job in jobs)
            )
        except Exception as error:  # every caller must hear about it
            for job in jobs:
                job.future.set_exception(error)
            return
        starts: list[int] = []
        offset = 0
        for job in jobs:
            starts.append(offset)
            offset += len(job.records)
        verdicts: list[list[RecordProblem]] = [[] for _ in jobs]
        number = 0
        for problem in problems:  # in position order, like the jobs
            while number + 1 < len(jobs) and problem.position >= starts[number + 1]:
                number += 1
            local = problem.position - starts[number]
            verdicts[number].append(RecordProblem(local, problem.column, problem.reason))
        for job, found in zip(jobs, verdicts, strict=True):
            job.future.set_result(found)
