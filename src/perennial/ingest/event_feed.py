"""The feed of arrivals: every event and order the drain moved in, in arrival order.

Journeys react to what customers do as it happens (a goal met, a wait for an
event ended, an event trigger). The warehouse answers "what happened" in bulk;
the feed answers "what is new since I last looked" cheaply: one row per arrival
with a sequence number, appended in the transaction that completes the drained
requests, so a drained event is in the feed exactly when its request is done.
Orders appear as events of type ``order_placed`` (properties: order id, amount,
currency, status, coupon code, channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from perennial.ingest.inbox import ClaimedItem
from perennial.store.operational import METADATA, UtcTimestamp

__all__ = ["EVENT_FEED", "ORDER_EVENT", "append_feed", "feed_rows"]

ORDER_EVENT = "order_placed"

_ORDER_PROPERTIES = ("order_id", "amount", "currency", "status", "coupon_code", "channel")

EVENT_FEED = sa.Table(
    "event_feed",
    METADATA,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("event_key", sa.String(255), nullable=False),
    sa.Column("customer_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("properties", sa.Text),
    sa.Column("at", UtcTimestamp(), nullable=False),
    sa.Index("ix_event_feed_customer", "customer_id", "event_type"),
)
"""``event_key``: the event id, or ``order:<order id>``: what makes a repeat recognisable."""


def feed_rows(items: Sequence[ClaimedItem]) -> list[dict[str, Any]]:
    """The feed rows of accepted event and order items about a known customer."""
    rows: list[dict[str, Any]] = []
    for item in items:
        if item.reason is not None or item.table not in ("events", "orders"):
            continue
        record = orjson.loads(item.record)
        if not isinstance(record, dict) or not isinstance(record.get("customer_id"), str):
            continue
        row = _event_row(record) if item.table == "events" else _order_row(record)
        if row is not None:
            rows.append(row)
    return rows


def append_feed(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection.execute(EVENT_FEED.insert(), list(rows))


def _event_row(record: dict[str, Any]) -> dict[str, Any] | None:
    kind, at = record.get("event_type"), _instant(record.get("ts"))
    if not isinstance(kind, str) or at is None:
        return None
    properties = record.get("properties")
    return {
        "event_key": str(record.get("event_id") or f"{record['customer_id']}:{kind}:{at}"),
        "customer_id": record["customer_id"],
        "event_type": kind[:100],
        "properties": None if properties is None else _json(properties),
        "at": at,
    }


def _order_row(record: dict[str, Any]) -> dict[str, Any] | None:
    at = _instant(record.get("placed_at"))
    if at is None:
        return None
    properties = {key: record[key] for key in _ORDER_PROPERTIES if record.get(key) is not None}
    return {
        "event_key": f"order:{record.get('order_id')}",
        "customer_id": record["customer_id"],
        "event_type": ORDER_EVENT,
        "properties": _json(properties),
        "at": at,
    }


def _json(value: object) -> str:
    if isinstance(value, str):
        return value  # already JSON text (the inbox keeps properties as text)
    return orjson.dumps(value).decode()


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
