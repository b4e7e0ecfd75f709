"""The event feed: drained events and orders, in arrival order, for journeys to react to."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.ingest.drain import drain_inbox
from perennial.ingest.event_feed import EVENT_FEED, feed_rows
from perennial.ingest.inbox import ClaimedItem
from perennial.service import create_app


def _item(
    seq: int, table: str, record: dict[str, object], reason: str | None = None
) -> ClaimedItem:
    return ClaimedItem(seq, 1, table, orjson.dumps(record).decode(), None, reason)


def test_events_and_orders_become_rows_refusals_and_visitors_do_not() -> None:
    items = [
        _item(
            1,
            "events",
            {
                "event_id": "e1",
                "customer_id": "C1",
                "event_type": "login",
                "ts": "2026-03-01T02:00:00.000000Z",
                "properties": {"app": "ios"},
            },
        ),
        _item(
            2,
            "events",
            {"anonymous_id": "a1", "event_type": "page_view", "ts": "2026-03-01T02:00:00Z"},
        ),
        _item(
            3,
            "events",
            {"customer_id": "C3", "event_type": "login", "ts": "2026-03-01T02:00:00Z"},
            reason="too far ahead",
        ),
        _item(
            4,
            "orders",
            {
                "customer_id": "C5",
                "order_id": "O1",
                "amount": "19.90",
                "currency": "CNY",
                "placed_at": "2026-03-01T03:00:00Z",
                "status": "paid",
            },
        ),
        _item(5, "customers", {"customer_id": "C4", "name": "Li"}),
        _item(6, "events", {"customer_id": "C6", "event_type": "login", "ts": "yesterday"}),
    ]
    rows = feed_rows(items)
    assert [(r["event_key"], r["customer_id"], r["event_type"]) for r in rows] == [
        ("e1", "C1", "login"),
        ("order:O1", "C5", "order_placed"),
    ]
    assert orjson.loads(rows[0]["properties"]) == {"app": "ios"}
    assert orjson.loads(rows[1]["properties"]) == {
        "order_id": "O1",
        "amount": "19.90",
        "currency": "CNY",
        "status": "paid",
    }
    assert rows[1]["at"] == datetime(2026, 3, 1, 3, tzinfo=UTC)


def test_the_track_api_feeds_events_and_orders_once_drained(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", ingest_drain_seconds=0)
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="t", roles=frozenset({Role.OPERATOR}), created_by="t"
        ).token
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        answer = client.post(
            "/v1/track",
            json={
                "events": [
                    {
                        "event_id": "ev-1",
                        "customer_id": "C1",
                        "event_type": "lesson_completed",
                        "ts": "2026-03-01T10:00:00+08:00",
                        "properties": {"lesson": 3},
                    }
                ]
            },
            headers=headers,
        )
        assert answer.status_code == 202, answer.text
        answer = client.post(
            "/v1/orders",
            json={
                "orders": [
                    {
                        "order_id": "O-9",
                        "customer_id": "C1",
                        "amount": "88.00",
                        "currency": "CNY",
                        "placed_at": "2026-03-01T11:00:00+08:00",
                        "status": "paid",
                    }
                ]
            },
            headers=headers,
        )
        assert answer.json() == {"accepted": 1, "rejected": []}
        drain_inbox(settings, app.state.perennial.engine)
        with app.state.perennial.engine.connect() as connection:
            rows = connection.execute(sa.select(EVENT_FEED).order_by(EVENT_FEED.c.seq)).all()
    assert [(r.event_key, r.customer_id, r.event_type) for r in rows] == [
        ("ev-1", "C1", "lesson_completed"),
        ("order:O-9", "C1", "order_placed"),
    ]
