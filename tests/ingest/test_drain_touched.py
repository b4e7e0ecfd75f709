"""What a drained batch tells live segments: the customers it touched and with what."""

from __future__ import annotations

import orjson

from perennial.ingest.drain import touched_by
from perennial.ingest.inbox import ClaimedItem


def _item(
    seq: int, table: str, record: dict[str, object], reason: str | None = None
) -> ClaimedItem:
    return ClaimedItem(seq, 1, table, orjson.dumps(record).decode(), None, reason)


def test_events_and_records_are_reported_once_each_refusals_and_visitors_not() -> None:
    items = [
        _item(1, "events", {"customer_id": "C1", "event_type": "login"}),
        _item(2, "events", {"customer_id": "C1", "event_type": "login"}),
        _item(3, "events", {"customer_id": "C2", "event_type": "search"}),
        _item(4, "events", {"anonymous_id": "a1", "event_type": "page_view"}),
        _item(5, "events", {"customer_id": "C3", "event_type": "login"}, reason="too far ahead"),
        _item(6, "customers", {"customer_id": "C4", "name": "Li"}),
        _item(7, "orders", {"customer_id": "C5", "order_id": "O1"}),
        _item(8, "events", {"customer_id": 7, "event_type": "login"}),
    ]
    assert touched_by(items) == (("C1", "login"), ("C2", "search"), ("C4", "customers"))
