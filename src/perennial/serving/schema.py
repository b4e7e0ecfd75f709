"""The serving store's tables: what a point lookup or a board query reads, already shaped.

One SQLite file, written once by :func:`~perennial.serving.refresh.refresh_serving`
and never changed afterwards (readers open it immutable). Instants are integer
microseconds since 1970-01-01 UTC and days integer days since 1970-01-01 (local
days of the stage model's zone), so comparisons and cursors are integer
comparisons. Each table's primary key is the order its readers walk it in.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "AT_RISK_SORTS",
    "FORMAT_VERSION",
    "INDEXES",
    "TABLES",
    "create_indexes",
    "create_tables",
]

FORMAT_VERSION = "3"
"""Stored in ``meta``; a reader refuses a file of another format (refresh rebuilds it)."""

TABLES: dict[str, str] = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID",
    "stages": (
        "CREATE TABLE stages (rank INTEGER PRIMARY KEY, key TEXT NOT NULL, "
        "label_en TEXT NOT NULL, label_zh TEXT NOT NULL, kpi TEXT)"
    ),
    # One row per customer of the profiles; the document is the 360 without contact
    # details, identities and timeline (added, masked or not, per request), zlib-compressed.
    # Churn risk, CLV and reasons (JSON lists) are columns too, for the at-risk list.
    "customers": (
        "CREATE TABLE customers (customer_id TEXT NOT NULL UNIQUE, name TEXT, name_key TEXT, "
        "phone TEXT, email TEXT, stage TEXT, rfm_segment TEXT, value_tier TEXT, "
        "monetary REAL NOT NULL, last_order_at INTEGER, last_order_key INTEGER NOT NULL, "
        "identities TEXT NOT NULL, churn_probability REAL, churn_risk_band TEXT, clv REAL, "
        "churn_reasons_en TEXT, churn_reasons_zh TEXT, document BLOB NOT NULL)"
    ),
    # Every identifier that finds a customer: phone (E.164), e-mail (lower case),
    # customer id, external and WeChat ids, anonymous ids.
    "lookup": (
        "CREATE TABLE lookup (value TEXT NOT NULL, kind TEXT NOT NULL, customer_id TEXT NOT NULL, "
        "PRIMARY KEY (value, kind, customer_id)) WITHOUT ROWID"
    ),
    # The stage model's transitions; from_stage/to_stage as stored (null = not known
    # the day before / no stage matched).
    "transitions": (
        "CREATE TABLE transitions (customer_id TEXT NOT NULL, day INTEGER NOT NULL, "
        "from_stage TEXT, to_stage TEXT, PRIMARY KEY (customer_id, day)) WITHOUT ROWID"
    ),
    # Orders and events, walked newest first by (customer_id, at DESC, item_key DESC);
    # contact = 1 when the body holds a phone or e-mail (masked per request).
    "timeline": (
        "CREATE TABLE timeline (customer_id TEXT NOT NULL, at INTEGER NOT NULL, "
        "item_key TEXT NOT NULL, contact INTEGER NOT NULL, body TEXT NOT NULL, "
        "PRIMARY KEY (customer_id, at, item_key)) WITHOUT ROWID"
    ),
    "stage_daily": (
        "CREATE TABLE stage_daily (day INTEGER NOT NULL, stage TEXT NOT NULL, "
        "customers INTEGER NOT NULL, PRIMARY KEY (day, stage)) WITHOUT ROWID"
    ),
    "revenue_daily": (
        "CREATE TABLE revenue_daily (day INTEGER NOT NULL, currency TEXT NOT NULL, "
        "orders INTEGER NOT NULL, revenue REAL NOT NULL, PRIMARY KEY (day, currency)) WITHOUT ROWID"
    ),
    "rfm_cells": (
        "CREATE TABLE rfm_cells (r INTEGER NOT NULL, f INTEGER NOT NULL, "
        "customers INTEGER NOT NULL, revenue REAL NOT NULL, PRIMARY KEY (r, f))"
    ),
    "rfm_segments": (
        "CREATE TABLE rfm_segments (segment TEXT PRIMARY KEY, label_en TEXT NOT NULL, "
        "label_zh TEXT NOT NULL, customers INTEGER NOT NULL, revenue REAL NOT NULL, "
        "position INTEGER NOT NULL)"
    ),
    # Numeric arrays (numpy bytes) for the board's arbitrary-range questions: flows
    # between two days and repeat buyers in a period.
    "packed": (
        "CREATE TABLE packed (name TEXT PRIMARY KEY, dtype TEXT NOT NULL, data BLOB NOT NULL)"
    ),
}

_LIST_FILTERS = ("stage", "rfm_segment", "value_tier")
_LIST_SORTS = ("monetary", "last_order_key")

INDEXES: tuple[str, ...] = (
    "CREATE INDEX customers_name ON customers (name_key, customer_id)",
    *(
        f"CREATE INDEX customers_by_{sort} ON customers ({sort}, customer_id)"
        for sort in _LIST_SORTS
    ),
    *(
        f"CREATE INDEX customers_{column} ON customers ({column}, customer_id)"
        for column in _LIST_FILTERS
    ),
    *(
        f"CREATE INDEX customers_{column}_by_{sort} ON customers ({column}, {sort}, customer_id)"
        for column in _LIST_FILTERS
        for sort in _LIST_SORTS
    ),
)
"""Built after the rows are in (faster than maintaining them row by row)."""

AT_RISK_SORTS = ("clv", "churn_probability", "monetary")
"""Orders of the at-risk list, each walked by an index of customers with a churn risk."""

INDEXES = (
    *INDEXES,
    *(
        f"CREATE INDEX customers_at_risk_by_{sort} ON customers "
        f"(coalesce({sort}, -1e308), customer_id) WHERE churn_probability IS NOT NULL"
        for sort in AT_RISK_SORTS
    ),
)


def create_tables(connection: sqlite3.Connection) -> None:
    for statement in TABLES.values():
        connection.execute(statement)


def create_indexes(connection: sqlite3.Connection) -> None:
    for statement in INDEXES:
        connection.execute(statement)
