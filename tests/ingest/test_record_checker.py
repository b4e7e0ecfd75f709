"""Group validation: concurrent callers get exactly the verdicts of their own check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from perennial.config import Settings
from perennial.ingest import record_checker
from perennial.ingest.record_checker import RecordChecker
from perennial.ingest.records import RecordProblem, check_records
from tests.conftest import NOW


def _events(caller: int) -> list[dict[str, Any]]:
    """Every third record of a caller is bad, at positions that differ per caller."""
    records: list[dict[str, Any]] = []
    for number in range(10 + caller):
        record = {"customer_id": f"C{caller}", "event_type": "x", "ts": "2025-01-01T00:00:00Z"}
        if (number + caller) % 3 == 0:
            record["ts"] = "2031-01-01T00:00:00Z"
        records.append(record)
    return records


def _orders(caller: int) -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"O{caller}-{n}",
            "customer_id": "C",
            "placed_at": "2025-01-01T00:00:00Z",
            "amount": "-1" if n == caller % 4 else "5",
            "currency": "CNY",
            "status": "paid",
        }
        for n in range(4)
    ]


def test_concurrent_callers_each_get_their_own_verdicts_from_shared_passes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []
    release = threading.Event()

    def counted(records: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        passes.append(len(records))
        release.wait(10)  # the first pass holds the line while every other caller queues
        return check_records(records, *args, **kwargs)

    monkeypatch.setattr(record_checker, "check_records", counted)
    checker = RecordChecker(settings)
    checker.start()
    results: dict[tuple[str, int], list[RecordProblem]] = {}
    lock = threading.Lock()

    def call(table: str, caller: int) -> None:
        records = _events(caller) if table == "events" else _orders(caller)
        found = checker.check(records, table, now=NOW)
        with lock:
            results[(table, caller)] = found

    threads = [
        threading.Thread(target=call, args=(table, caller))
        for caller in range(12)
        for table in ("events", "orders")
    ]
    # The first caller alone, until its pass runs and holds the line; then every other
    # caller, until all of them queued behind it. (Started together, the checker could
    # take several callers into its first group, and the pass count would vary.)
    threads[0].start()
    _wait_until(lambda: len(passes) == 1)
    for thread in threads[1:]:
        thread.start()
    _wait_until(lambda: checker.waiting() == len(threads) - 1)
    release.set()
    for thread in threads:
        thread.join()
    checker.stop()

    assert len(results) == 24
    assert len(passes) == 3  # the first caller's pass, then one per table for the rest
    for (table, caller), found in results.items():
        records = _events(caller) if table == "events" else _orders(caller)
        assert found == check_records(records, table, settings, now=NOW)
        assert found  # every caller had bad records
    assert checker.check([], "events", now=NOW) == []


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the checker did not reach the expected state"
        time.sleep(0.01)
