"""Customer reads from the serving store: the 360 row, timeline pages, lists and search.

Every query is an index seek on the store's tables (see
:mod:`perennial.serving.schema`); user input only ever reaches SQL as bound
values. Phone and e-mail come back as stored: masking is the caller's decision.
Pagination is by key (the last row's sort values), never by offset.
"""

from __future__ import annotations

import base64
import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from perennial.ingest.identifiers import normalize_email, normalize_phone
from perennial.serving.documents import DocumentCodec

__all__ = [
    "SORTS",
    "CustomerFilter",
    "CustomerRecord",
    "CustomerSort",
    "CustomerSummary",
    "SearchHit",
    "TimelineRow",
    "customer_exists",
    "customer_record",
    "document_codec",
    "list_customers",
    "name_key",
    "search_customers",
    "summaries",
    "timeline_rows",
]

CustomerSort = Literal["customer_id", "monetary", "last_order"]

SORTS: dict[CustomerSort, str] = {
    "customer_id": "customer_id",
    "monetary": "monetary",
    "last_order": "last_order_key",
}
"""The stored column each sort orders by (then customer id); monetary and last order descend."""

_SUMMARY_COLUMNS = (
    "customer_id, name, stage, rfm_segment, value_tier, monetary, last_order_at, "
    "last_order_key, phone, email"
)
_KIND_ORDER = ("customer_id", "external_id", "phone", "email", "wechat_unionid", "wechat_openid")


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    customer_id: str
    document: bytes
    """The 360 document without contact details, identities and timeline (a JSON object)."""
    identities: bytes
    """JSON array of ``{type, value, first_seen_at}``; phone and e-mail values unmasked."""
    phone: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    at: int
    """Microseconds since 1970-01-01 UTC."""
    item_key: str
    contact: bool
    """The body holds a phone or e-mail (event properties) that masking must hide."""
    body: bytes


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    customer_id: str
    name: str | None
    stage: str | None
    rfm_segment: str | None
    value_tier: str | None
    monetary: float
    last_order_at: int | None
    last_order_key: int
    phone: str | None
    email: str | None

    def sort_key(self, sort: CustomerSort) -> list[Any]:
        """The values a cursor holds to continue after this row."""
        if sort == "monetary":
            return [self.monetary, self.customer_id]
        if sort == "last_order":
            return [self.last_order_key, self.customer_id]
        return [self.customer_id]


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    stage: str | None = None
    rfm_segment: str | None = None
    value_tier: str | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    customer: CustomerSummary
    matched_on: tuple[str, ...]
    """``customer_id``, ``phone``, ``email``, ``name``, ``external_id``, ..."""


def customer_exists(connection: sqlite3.Connection, customer_id: str) -> bool:
    query = "SELECT 1 FROM customers WHERE customer_id = ?"
    return connection.execute(query, (customer_id,)).fetchone() is not None


def document_codec(connection: sqlite3.Connection) -> DocumentCodec:
    """The codec of the store's 360 documents (load once per store file)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'document_dictionary'").fetchone()
    return DocumentCodec(base64.b64decode(row[0]) if row else b"")


def customer_record(
    connection: sqlite3.Connection, customer_id: str, codec: DocumentCodec
) -> CustomerRecord | None:
    row = connection.execute(
        "SELECT customer_id, document, CAST(identities AS BLOB), phone, email "
        "FROM customers WHERE customer_id = ?",
        (customer_id,),
    ).fetchone()
    if row is None:
        return None
    customer, document, identities, phone, email = row
    return CustomerRecord(customer, codec.decompress(document), identities, phone, email)


def timeline_rows(
    connection: sqlite3.Connection,
    customer_id: str,
    *,
    before: tuple[int, str] | None,
    limit: int,
) -> list[TimelineRow]:
    """Up to ``limit`` items newest first, strictly older than ``before`` (at, item key)."""
    if before is None:
        rows = connection.execute(
            "SELECT at, item_key, contact, CAST(body AS BLOB) FROM timeline "
            "WHERE customer_id = ? ORDER BY at DESC, item_key DESC LIMIT ?",
            (customer_id, limit),
        ).fetchall()
    else:
        rows = connection.execute(
            "SELECT at, item_key, contact, CAST(body AS BLOB) FROM timeline "
            "WHERE customer_id = ? AND (at, item_key) < (?, ?) "
            "ORDER BY at DESC, item_key DESC LIMIT ?",
            (customer_id, before[0], before[1], limit),
        ).fetchall()
    return [TimelineRow(at, key, bool(contact), body) for at, key, contact, body in rows]


def list_customers(
    connection: sqlite3.Connection,
    where: CustomerFilter,
    *,
    sort: CustomerSort = "customer_id",
    after: Sequence[Any] | None = None,
    limit: int = 50,
) -> list[CustomerSummary]:
    """Customers matching every given filter, by ``sort``, after the cursor key ``after``."""
    clauses: list[str] = []
    values: list[Any] = []
    for column in ("stage", "rfm_segment", "value_tier"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    column = SORTS[sort]
    if sort == "customer_id":
        order = "customer_id"
        if after is not None:
            clauses.append("customer_id > ?")
            values.append(after[0])
    else:
        order = f"{column} DESC, customer_id DESC"
        if after is not None:
            clauses.append(f"({column}, customer_id) < (?, ?)")
            values.extend(after[:2])
    condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    query = f"SELECT {_SUMMARY_COLUMNS} FROM customers {condition} ORDER BY {order} LIMIT ?"  # noqa: S608 (fixed fragments; values bound)
    rows = connection.execute(query, (*values, limit)).fetchall()
    return [CustomerSummary(*row) for row in rows]


def summaries(connection: sqlite3.Connection, customer_ids: Sequence[str]) -> list[CustomerSummary]:
    """The summaries of ``customer_ids`` that exist, in the order given."""
    if not customer_ids:
        return []
    marks = ", ".join("?" * len(customer_ids))
    query = f"SELECT {_SUMMARY_COLUMNS} FROM customers WHERE customer_id IN ({marks})"  # noqa: S608
    found = {row[0]: CustomerSummary(*row) for row in connection.execute(query, customer_ids)}
    return [found[customer_id] for customer_id in customer_ids if customer_id in found]


def name_key(text: str) -> str:
    """How names are compared: NFC-normalised and lower-cased (as the refresh stores them)."""
    return unicodedata.normalize("NFC", text).lower()


def search_customers(
    connection: sqlite3.Connection, text: str, *, phone_region: str, limit: int = 20
) -> list[SearchHit]:
    """Customers an identifier or a name prefix finds; exact identifiers first.

    ``text`` is tried as it is (customer id, external and WeChat ids, anonymous
    id), as a phone normalised the way ingest normalises it (``138 1234 5678``
    finds ``+8613812345678``), as an e-mail (case ignored) and as the start of a
    name.
    """
    query = text.strip()
    if not query:
        return []
    matched: dict[str, list[str]] = {}
    for kind, customer_id in _identifier_matches(connection, query, phone_region):
        matched.setdefault(customer_id, []).append(kind)
    exact = sorted(matched, key=lambda c: (min(_kind_rank(k) for k in matched[c]), c))
    for customer_id in _name_matches(connection, query, limit):
        matched.setdefault(customer_id, []).append("name")
    ordered = (exact + [c for c in matched if c not in exact])[:limit]
    return [
        SearchHit(summary, tuple(dict.fromkeys(matched[summary.customer_id])))
        for summary in summaries(connection, ordered)
    ]


def _identifier_matches(
    connection: sqlite3.Connection, query: str, phone_region: str
) -> list[tuple[str, str]]:
    candidates = {query}
    email = normalize_email(query)
    if email:
        candidates.add(email)
    try:
        phone = normalize_phone(query, phone_region)
    except ValueError:  # a misconfigured region: search by the other keys
        phone = None
    if phone:
        candidates.add(phone)
    marks = ", ".join("?" * len(candidates))
    rows = connection.execute(
        f"SELECT kind, customer_id FROM lookup WHERE value IN ({marks}) LIMIT 1000",  # noqa: S608
        sorted(candidates),
    ).fetchall()
    return [(kind, customer_id) for kind, customer_id in rows]


def _name_matches(connection: sqlite3.Connection, query: str, limit: int) -> list[str]:
    prefix = name_key(query)
    rows = connection.execute(
        "SELECT customer_id FROM customers WHERE name_key >= ? AND name_key < ? "
        "ORDER BY name_key, customer_id LIMIT ?",
        (prefix, prefix + "\U0010ffff", limit),
    ).fetchall()
    return [row[0] for row in rows]


def _kind_rank(kind: str) -> int:
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
