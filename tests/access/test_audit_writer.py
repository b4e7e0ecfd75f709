"""The audit writer: views written in batches, flush waits for them, close loses nothing."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from perennial.access.audit import AuditEntry, AuditWriter, query_audit
from perennial.access.tables import AUDIT_LOG
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate


def _entry(number: int) -> AuditEntry:
    return AuditEntry("user:ops", "customer.viewed", "customer", f"C{number}", {"via": "test"})


def test_flush_returns_only_after_every_earlier_view_is_written(settings: Settings) -> None:
    migrate(settings)
    engine = create_engine_for(settings)
    writer = AuditWriter(engine, interval=0.05, batch=7)
    adders = [
        threading.Thread(target=lambda k=k: [writer.add(_entry(k * 100 + i)) for i in range(50)])
        for k in range(4)
    ]
    for thread in adders:
        thread.start()
    for thread in adders:
        thread.join()
    writer.flush()
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(AUDIT_LOG)).scalar()
        newest = query_audit(connection, limit=1)[0]
    assert count == 200
    assert newest["detail"] == {"via": "test"} and newest["at"].tzinfo is not None
    writer.close()


def test_close_writes_what_is_still_queued_and_later_flushes_do_not_hang(
    settings: Settings,
) -> None:
    migrate(settings)
    engine = create_engine_for(settings)
    writer = AuditWriter(engine, interval=5.0)
    for number in range(3):
        writer.add(_entry(number))
    writer.close()
    writer.add(_entry(99))
    writer.flush(timeout=1.0)
    with engine.connect() as connection:
        ids = {row["subject_id"] for row in query_audit(connection)}
    assert ids == {"C0", "C1", "C2", "C99"}
