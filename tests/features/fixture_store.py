"""A tiny store with one customer per edge case, built in code and ingested for real.

``AS_OF`` is 2025-06-01 00:00 UTC (08:00 in Asia/Shanghai). Every customer
below exists to pin one behaviour; the expected values in the tests are
computed by hand from these rows.

- ``one``: a single paid order exactly 30 d before ``AS_OF``, with a coupon.
- ``refunds``: only refunded and cancelled orders.
- ``sameday``: two paid orders on one local day (05-20) and one on 05-10; an
  undated customer record.
- ``exact``: an order and a login exactly at ``AS_OF`` (excluded) and an order one
  second before.
- ``midnight``: orders at 23:30 and 00:30 Shanghai time (one UTC day, two local
  days) and at 23:30 and 00:30 UTC (two UTC days, one local day).
- ``windows``: orders exactly at the 1/7/90-day edges and one second outside
  them; logins in both trend windows.
- ``trend``: an order and logins only in the last 30 days (empty earlier window).
- ``browser``: no record; anonymous browsing linked by a login before
  ``AS_OF``, a second device linked only after it, help searches.
- ``carts``: more add-to-carts than page views.
- ``prospect``: a record created before ``AS_OF`` and nothing else.
- ``future``: a record created exactly at ``AS_OF`` (not yet known).
- ``undated``: a record without ``created_at`` and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from tests.conftest import NOW

__all__ = ["AS_OF", "EVENTS", "ORDERS", "build_fixture_store", "ingest_rows"]

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)

CUSTOMERS = [
    ("one", "2025-01-01T00:00:00Z", "ads"),
    ("refunds", "2025-02-01T00:00:00Z", "referral"),
    ("sameday", "", "organic"),
    ("exact", "2025-05-01T00:00:00Z", "app"),
    ("midnight", "2025-03-01T00:00:00Z", ""),
    ("windows", "2025-01-01T00:00:00Z", "web"),
    ("trend", "2025-05-01T00:00:00Z", "web"),
    ("carts", "2025-05-01T00:00:00Z", "web"),
    ("prospect", "2025-05-20T00:00:00Z", "wechat"),
    ("future", "2025-06-01T00:00:00Z", "ads"),
    ("undated", "", ""),
]

# order_id, customer_id, placed_at, amount, status, coupon_code
ORDERS = [
    ("O1", "one", "2025-05-02T00:00:00Z", "100.00", "paid", "SAVE10"),
    ("R1", "refunds", "2025-04-01T00:00:00Z", "50.00", "refunded", ""),
    ("R2", "refunds", "2025-04-15T00:00:00Z", "70.00", "refunded", ""),
    ("R3", "refunds", "2025-04-20T00:00:00Z", "20.00", "cancelled", ""),
    ("S1", "sameday", "2025-05-20T02:00:00Z", "30.00", "paid", ""),
    ("S2", "sameday", "2025-05-20T10:00:00Z", "20.00", "paid", "WELCOME"),
    ("S3", "sameday", "2025-05-10T02:00:00Z", "10.00", "paid", ""),
    ("E1", "exact", "2025-06-01T00:00:00Z", "500.00", "paid", ""),
    ("E2", "exact", "2025-05-31T23:59:59Z", "5.00", "paid", ""),
    ("M1", "midnight", "2025-05-10T15:30:00Z", "10.00", "paid", ""),
    ("M2", "midnight", "2025-05-10T16:30:00Z", "10.00", "paid", ""),
    ("M3", "midnight", "2025-05-04T23:30:00Z", "10.00", "paid", ""),
    ("M4", "midnight", "2025-05-05T00:30:00Z", "10.00", "paid", ""),
    ("W1", "windows", "2025-05-31T00:00:00Z", "1.00", "paid", ""),
    ("W2", "windows", "2025-05-25T00:00:00Z", "2.00", "paid", ""),
    ("W3", "windows", "2025-05-24T23:59:59Z", "4.00", "paid", ""),
    ("W4", "windows", "2025-03-03T00:00:00Z", "8.00", "paid", ""),
    ("W5", "windows", "2025-03-02T23:59:59Z", "16.00", "paid", ""),
    ("W6", "windows", "2025-04-02T00:00:00Z", "32.00", "paid", ""),
    ("T1", "trend", "2025-05-15T00:00:00Z", "40.00", "paid", ""),
]

# item_id, order_id, placed_at (the order's), category, quantity
ITEMS = [
    ("i1", "O1", "2025-05-02T00:00:00Z", "coffee", 2),
    ("i2", "S1", "2025-05-20T02:00:00Z", "coffee", 1),
    ("i3", "S2", "2025-05-20T10:00:00Z", "tea", 1),
    ("i4", "S3", "2025-05-10T02:00:00Z", "coffee", 1),
    ("i5", "M1", "2025-05-10T15:30:00Z", "tea", 3),
    ("i6", "M2", "2025-05-10T16:30:00Z", "tea", 1),
    ("i7", "W1", "2025-05-31T00:00:00Z", "coffee", 1),
    ("i8", "W2", "2025-05-25T00:00:00Z", "tea", 1),
    ("i9", "R1", "2025-04-01T00:00:00Z", "coffee", 9),
]

# event_id, customer_id, anonymous_id, event_type, ts, properties
EVENTS: list[tuple[str, str | None, str | None, str, str, dict[str, str] | None]] = [
    ("e01", "exact", None, "login", "2025-06-01T00:00:00Z", None),
    ("e02", "windows", None, "login", "2025-05-10T00:00:00Z", None),
    ("e03", "windows", None, "login", "2025-04-10T00:00:00Z", None),
    ("e04", "windows", None, "login", "2025-04-20T00:00:00Z", None),
    ("e05", "trend", None, "login", "2025-05-20T00:00:00Z", None),
    ("e06", "trend", None, "login", "2025-05-25T00:00:00Z", None),
    ("e07", None, "dev-1", "page_view", "2025-05-20T00:00:00Z", None),
    ("e08", None, "dev-1", "page_view", "2025-05-21T00:00:00Z", None),
    ("e09", None, "dev-1", "add_to_cart", "2025-05-21T00:00:00Z", None),
    ("e10", "browser", "dev-1", "login", "2025-05-22T00:00:00Z", None),
    ("e11", None, "dev-2", "page_view", "2025-05-23T00:00:00Z", None),
    ("e12", "browser", "dev-2", "login", "2025-06-02T00:00:00Z", None),
    ("e13", "browser", None, "search", "2025-05-24T00:00:00Z", {"query": "How to CANCEL my plan"}),
    ("e14", "browser", None, "search", "2025-05-24T01:00:00Z", {"query": "如何注销账号"}),
    ("e15", "browser", None, "search", "2025-05-24T02:00:00Z", {"query": "running shoes"}),
    ("e16", "browser", None, "search", "2025-02-01T00:00:00Z", {"query": "export my data"}),
    ("e17", "carts", None, "page_view", "2025-05-30T00:00:00Z", None),
    ("e18", "carts", None, "add_to_cart", "2025-05-30T00:01:00Z", None),
    ("e19", "carts", None, "add_to_cart", "2025-05-30T00:02:00Z", None),
    ("e20", "carts", None, "add_to_cart", "2025-05-30T00:03:00Z", None),
    ("e21", "refunds", None, "complaint", "2025-05-31T12:00:00Z", None),
    ("e22", "refunds", None, "refund_request", "2025-04-20T00:00:00Z", None),
    ("e23", "one", None, "coupon_redeemed", "2025-05-02T00:00:00Z", None),
]


def build_fixture_store(settings: Settings, folder: Path) -> None:
    """Write the four source files under ``folder`` and ingest them into ``settings``' store."""
    folder.mkdir(parents=True, exist_ok=True)
    ingest_rows(settings, folder, "customers", CUSTOMERS)
    ingest_rows(settings, folder, "orders", ORDERS)
    ingest_rows(settings, folder, "order_items", ITEMS)
    ingest_rows(settings, folder, "events", EVENTS)


def ingest_rows(
    settings: Settings, folder: Path, table: str, rows: list[tuple[object, ...]], name: str = ""
) -> None:
    """Write ``rows`` of ``table`` (in this module's column layout) and ingest the file."""
    path = folder / f"{name or table}.{'jsonl' if table == 'events' else 'csv'}"
    path.write_text(_render(table, rows), encoding="utf-8")
    report = ingest_file(path, settings, table=table, now=NOW)
    assert report.quarantined == 0, report.quarantine_reasons


def _render(table: str, rows: list[tuple[object, ...]]) -> str:
    if table == "events":
        keys = ("event_id", "customer_id", "anonymous_id", "event_type", "ts", "properties")
        return "".join(
            orjson.dumps({k: v for k, v in zip(keys, row, strict=True) if v is not None}).decode()
            + "\n"
            for row in rows
        )
    header = {
        "customers": "customer_id,created_at,acquisition_channel",
        "orders": "order_id,customer_id,placed_at,amount,status,coupon_code,currency",
        "order_items": "item_id,order_id,placed_at,category,quantity,product_id",
    }[table]
    extra = {"customers": (), "orders": ("CNY",), "order_items": ("sku",)}[table]
    lines = [",".join(str(v) for v in (*row, *extra)) for row in rows]
    return "\n".join([header, *lines]) + "\n"
