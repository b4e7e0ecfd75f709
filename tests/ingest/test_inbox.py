"""The inbox: durable appends (grouped), whole-request claims with leases, drains that a
crash at any point neither loses nor doubles, and the same on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perennial.config import Settings
from perennial.ingest import drain as drain_module
from perennial.ingest.drain import InboxDrainer, drain_inbox, drain_once, release_dead_drainers
from perennial.ingest.inbox import (
    INBOX_ITEMS,
    INBOX_REQUESTS,
    InboxEntry,
    InboxItem,
    claim_requests,
    claimed_items,
    complete_requests,
    inbox_counts,
    prune_inbox,
)
from perennial.ingest.inbox_writer import InboxWriter
from perennial.store.operational import create_engine_for, migrate
from perennial.store.warehouse import Warehouse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _event(event_id: str, customer: str = "C1", **extra: Any) -> str:
    record = {
        "event_id": event_id,
        "customer_id": customer,
        "event_type": "page_view",
        "ts": "2025-06-01T00:00:00.000000Z",
        **extra,
    }
    return orjson.dumps(record).decode()


def _entry(*event_ids: str, key: str | None = None, refused: int = 0) -> InboxEntry:
    items = [InboxItem("events", i, _event(e)) for i, e in enumerate(event_ids)]
    items += [
        InboxItem("events", len(items) + n, '{"event_type":5}', "event_type", "event_type: bad")
        for n in range(refused)
    ]
    return InboxEntry(
        endpoint="track",
        principal="key:test",
        answer=orjson.dumps({"accepted": len(event_ids)}).decode(),
        received_at=T0,
        items=tuple(items),
        idempotency_key=key,
        body_digest="digest" if key else None,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    migrate(settings)
    engine = create_engine_for(settings)
    yield engine
    engine.dispose()


def _append(settings: Settings, *entries: InboxEntry) -> None:
    writer = InboxWriter(settings)
    for entry in entries:
        writer.append(entry)
    writer.stop()


def _event_ids(settings: Settings) -> list[str]:
    paths = Warehouse(settings.warehouse).snapshot().paths("events")
    if not paths:
        return []
    rows = duckdb.execute("SELECT event_id FROM read_parquet(?) ORDER BY 1", [paths]).fetchall()
    return [r[0] for r in rows]


def _quarantine_lines(settings: Settings) -> list[int]:
    paths = Warehouse(settings.warehouse).snapshot().paths("quarantine")
    if not paths:
        return []
    query = "SELECT source_line FROM read_parquet(?) ORDER BY 1"
    return [r[0] for r in duckdb.execute(query, [paths]).fetchall()]


def test_a_claim_takes_whole_requests_oldest_first_up_to_the_item_limit(
    settings: Settings, engine: Engine
) -> None:
    _append(settings, _entry("a1", "a2", "a3"), _entry("b1", "b2"), _entry("c1"))

    with engine.begin() as connection:
        first = claim_requests(connection, "one", now=T0, lease=LEASE, max_items=4)
        second = claim_requests(connection, "two", now=T0, lease=LEASE, max_items=1)
        third = claim_requests(connection, "three", now=T0, lease=LEASE, max_items=100)
        items = claimed_items(connection, first)

    assert first == [1]  # the next request would pass the limit: requests are never split
    assert second == [2]  # at least one request, even over the limit
    assert third == [3]
    assert [(i.request_seq, orjson.loads(i.record)["event_id"]) for i in items] == [
        (1, "a1"),
        (1, "a2"),
        (1, "a3"),
    ]


def test_a_claim_holds_until_its_lease_ends_or_someone_takes_it_over(
    settings: Settings, engine: Engine
) -> None:
    _append(settings, _entry("a1"))
    with engine.begin() as connection:
        assert claim_requests(connection, "one", now=T0, lease=LEASE, max_items=10) == [1]
        during = claim_requests(connection, "two", now=T0 + LEASE / 2, lease=LEASE, max_items=10)
        forced = claim_requests(
            connection, "three", now=T0 + LEASE / 2, lease=LEASE, max_items=10, take_over=True
        )
        after = claim_requests(connection, "four", now=T0 + LEASE * 3, lease=LEASE, max_items=10)

    assert (during, forced, after) == ([], [1], [1])


def test_a_drain_moves_items_into_the_warehouse_and_marks_the_requests_done(
    settings: Settings, engine: Engine
) -> None:
    _append(settings, _entry("a1", "a2", refused=1), _entry("b1"))

    report = drain_inbox(settings, engine)

    assert (report.requests, report.items, report.accepted, report.quarantined) == (2, 4, 3, 1)
    assert _event_ids(settings) == ["a1", "a2", "b1"]
    assert _quarantine_lines(settings) == [3]  # the refused item's item_seq
    with engine.connect() as connection:
        assert inbox_counts(connection) == {"pending": 0, "done": 2, "failed": 0}
        assert connection.execute(sa.select(sa.func.count()).select_from(INBOX_ITEMS)).scalar() == 0
    assert drain_inbox(settings, engine).requests == 0


def test_a_crash_between_the_warehouse_commit_and_the_done_mark_re_ingests_nothing_twice(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(settings, _entry("a1", "a2", refused=1), _entry("b1", refused=1))
    versions_before = Warehouse(settings.warehouse).snapshot().version

    def die(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # the process dies: no except clause runs, no claim is released

    monkeypatch.setattr(drain_module, "complete_requests", die)
    with pytest.raises(KeyboardInterrupt):
        drain_once(settings, engine, owner="crashed")
    monkeypatch.undo()

    assert Warehouse(settings.warehouse).snapshot().version > versions_before  # committed
    assert _event_ids(settings) == ["a1", "a2", "b1"]
    with engine.connect() as connection:
        assert inbox_counts(connection)["pending"] == 2  # never marked done

    again = drain_inbox(settings, engine, take_over=True)

    assert again.requests == 2
    assert (again.accepted, again.quarantined) == (0, 0)
    assert sum(r.already_stored for r in again.reports) == 5  # 3 rows + 2 quarantined items
    assert _event_ids(settings) == ["a1", "a2", "b1"]
    assert _quarantine_lines(settings) == [3, 5]
    with engine.connect() as connection:
        assert inbox_counts(connection) == {"pending": 0, "done": 2, "failed": 0}


def test_a_failing_request_is_retried_alone_and_set_aside_after_three_attempts(
    settings: Settings, engine: Engine
) -> None:
    poison = InboxEntry("track", "key:test", "{}", T0, (InboxItem("events", 0, "[1, 2]"),))
    _append(settings, _entry("a1"), poison, _entry("c1"))

    failures = 0
    for _ in range(6):
        try:
            drain_once(settings, engine, owner="me", max_items=1)
        except AttributeError:
            failures += 1

    assert failures == 3
    assert _event_ids(settings) == ["a1", "c1"]
    with engine.connect() as connection:
        assert inbox_counts(connection) == {"pending": 0, "done": 2, "failed": 1}
        error = connection.execute(
            sa.select(INBOX_REQUESTS.c.last_error).where(INBOX_REQUESTS.c.request_seq == 2)
        ).scalar()
    assert error is not None and error.startswith("AttributeError")


def test_the_writer_groups_concurrent_requests_and_answers_a_repeated_key_once(
    settings: Settings, engine: Engine
) -> None:
    writer = InboxWriter(settings, max_group=64)
    writer.start()
    answers: list[Any] = []
    lock = threading.Lock()

    def send(number: int) -> None:
        key = "same" if number % 4 == 0 else None
        answer = writer.append(_entry(f"e{number}", key=key))
        with lock:
            answers.append((number, answer))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.stop()

    keyed = [a for n, a in answers if n % 4 == 0]
    assert len(answers) == 40
    assert sum(not a.replayed for a in keyed) == 1
    with engine.connect() as connection:
        stored = connection.execute(sa.select(sa.func.count()).select_from(INBOX_REQUESTS)).scalar()
    assert stored == 31  # 30 without a key, one of the ten with the same key


def test_a_repeated_key_in_a_later_request_gets_the_first_answer(
    settings: Settings, engine: Engine
) -> None:
    writer = InboxWriter(settings)
    first = writer.append(_entry("e1", key="k1"))
    second = writer.append(_entry("e2", key="k1"))
    writer.stop()

    assert not first.replayed and second.replayed
    assert second.answer == first.answer
    with engine.connect() as connection:
        assert inbox_counts(connection)["pending"] == 1


def test_done_requests_are_pruned_after_the_retention_and_free_their_keys(
    settings: Settings, engine: Engine
) -> None:
    _append(settings, _entry("a1", key="k1"), _entry("b1"))
    with engine.begin() as connection:
        seqs = claim_requests(connection, "me", now=T0, lease=LEASE, max_items=1)
        complete_requests(connection, seqs, now=T0)
        assert prune_inbox(connection, drained_before=T0) == 0
        assert prune_inbox(connection, drained_before=T0 + timedelta(seconds=1)) == 1
        assert inbox_counts(connection) == {"pending": 1, "done": 0, "failed": 0}
    writer = InboxWriter(settings)
    assert not writer.append(_entry("a2", key="k1")).replayed
    writer.stop()


def test_the_background_drainer_drains_within_its_interval_and_stops_cleanly(
    settings: Settings, engine: Engine
) -> None:
    drainer = InboxDrainer(settings, engine, interval=0.1)
    drainer.start()
    try:
        _append(settings, _entry("a1"))
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while not _event_ids(settings) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.1)
    finally:
        drainer.stop()

    assert _event_ids(settings) == ["a1"]
    assert drainer.drain_now().requests == 0


@pytest.mark.integration
def test_append_and_claim_on_postgresql_skip_rows_another_drainer_is_claiming(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings(home=tmp_path / "home", operational_url=postgres_url)
    migrate(settings)
    engine = create_engine_for(settings)
    try:
        with engine.begin() as connection:
            connection.execute(INBOX_ITEMS.delete())
            connection.execute(INBOX_REQUESTS.delete())
        _append(settings, _entry("a1", key="pg"), _entry("b1"), _entry("c1"))
        writer = InboxWriter(settings)
        assert writer.append(_entry("zz", key="pg")).replayed
        writer.stop()
        with engine.connect() as slow, slow.begin():
            # A drainer in the middle of its claim: its rows are locked, not yet leased.
            slow.execute(
                sa.select(INBOX_REQUESTS.c.request_seq)
                .order_by(INBOX_REQUESTS.c.request_seq)
                .limit(1)
                .with_for_update()
            ).all()
            with engine.begin() as fast:
                now = datetime.now(UTC)
                taken = claim_requests(fast, "fast", now=now, lease=LEASE, max_items=10)
        assert len(taken) == 2  # the locked first request was skipped, not waited for
        report = drain_inbox(settings, engine)
        assert report.requests == 1
        with engine.connect() as connection:
            assert inbox_counts(connection) == {"pending": 2, "done": 1, "failed": 0}
    finally:
        engine.dispose()


def test_claims_of_a_dead_drainer_on_this_host_are_taken_back_at_once(
    settings: Settings, engine: Engine
) -> None:
    _append(settings, _entry("a1"), _entry("b1"), _entry("c1"))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    host = socket.gethostname()[:40]
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for owner in (f"{host}:{child.pid}:gone", f"{host}:{os.getpid()}:here", "far:1:x"):
            claim_requests(connection, owner, now=now, lease=LEASE, max_items=1)

    assert release_dead_drainers(engine) == 1
    report = drain_inbox(settings, engine)

    assert report.requests == 1  # the dead drainer's; the others wait for their leases
    assert _event_ids(settings) == ["a1"]
