"""The inbox: API items made durable in the operational store before they are acknowledged.

A track, identify or orders request is checked, then appended here in one
transaction (its answer and, when given, its idempotency key with it), and
only then answered: a 2xx means the items survive a crash of the server. A
drainer later claims requests in order, ingests their items into the
warehouse through the same pipeline as files, and marks them done. Claims are
leases, so a drainer that dies leaves nothing stuck; draining twice is
harmless because ingest is idempotent (table keys) and lines are never reused:
each item's ``item_seq`` is its line in the ``api:inbox`` source.

Schema owned by migration 0003; SQLite or PostgreSQL (``FOR UPDATE SKIP
LOCKED`` lets several drainers claim without waiting on each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from perennial.errors import StoreError
from perennial.store.operational import METADATA, UtcTimestamp

__all__ = [
    "INBOX_ITEMS",
    "INBOX_REQUESTS",
    "INBOX_SOURCE",
    "ClaimedItem",
    "InboxEntry",
    "InboxItem",
    "InboxStatus",
    "StoredAnswer",
    "append_entries",
    "claim_holders",
    "claim_requests",
    "claimed_items",
    "complete_requests",
    "find_answer",
    "inbox_counts",
    "prune_inbox",
    "release_claims_of",
    "release_requests",
]

INBOX_SOURCE = "api:inbox"
"""The ``_source_file`` of every row ingested from the inbox; ``_source_line`` is its item_seq."""

_TS = UtcTimestamp()
_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

INBOX_REQUESTS = sa.Table(
    "inbox_requests",
    METADATA,
    sa.Column("request_seq", _SEQUENCE, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(16), nullable=False),
    sa.Column("principal", sa.String(160), nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("body_digest", sa.String(64)),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("received_at", _TS, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", _TS),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("drained_at", _TS),
    sa.UniqueConstraint(
        "principal", "endpoint", "idempotency_key", name="uq_inbox_requests_idempotency"
    ),
    sa.Index("ix_inbox_requests_status", "status", "request_seq"),
    sa.Index("ix_inbox_requests_drained_at", "drained_at"),
)

INBOX_ITEMS = sa.Table(
    "inbox_items",
    METADATA,
    sa.Column("item_seq", _SEQUENCE, primary_key=True, autoincrement=True),
    sa.Column(
        "request_seq", _SEQUENCE, sa.ForeignKey("inbox_requests.request_seq"), nullable=False
    ),
    sa.Column("table_name", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("column_name", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Index("ix_inbox_items_request", "request_seq"),
)


class InboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    """Ingest failed ``max_attempts`` times on this request alone: left for a person."""


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One row for one canonical table. ``reason`` set: refused by the API's check, to be
    quarantined (``record`` is then the item as sent); else ``record`` is ready to ingest."""

    table: str
    position: int
    """Index of the item in its request."""
    record: str
    """JSON text."""
    column: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One request: its items and the answer its caller gets (now and on a replay)."""

    endpoint: str
    principal: str
    answer: str
    received_at: datetime
    items: tuple[InboxItem, ...]
    idempotency_key: str | None = None
    body_digest: str | None = None

    @property
    def idempotency_scope(self) -> tuple[str, str, str] | None:
        if self.idempotency_key is None:
            return None
        return (self.principal, self.endpoint, self.idempotency_key)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    answer: str
    body_digest: str | None
    replayed: bool
    """True when this is the answer of an earlier request with the same idempotency key."""


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    item_seq: int
    request_seq: int
    table: str
    record: str
    column: str | None
    reason: str | None


def append_entries(connection: sa.Connection, entries: Sequence[InboxEntry]) -> None:
    """Insert ``entries`` in the caller's transaction; a reused idempotency key raises
    ``sqlalchemy.exc.IntegrityError`` (the caller rolls back and retries one by one)."""
    items: list[dict[str, object]] = []
    for entry in entries:
        result = connection.execute(
            INBOX_REQUESTS.insert().values(
                endpoint=entry.endpoint,
                principal=entry.principal,
                idempotency_key=entry.idempotency_key,
                body_digest=entry.body_digest,
                answer=entry.answer,
                received_at=entry.received_at,
                item_count=len(entry.items),
                status=InboxStatus.PENDING.value,
                attempts=0,
            )
        )
        key = result.inserted_primary_key
        if key is None:  # every supported database reports the new rowid
            raise StoreError("the operational store did not number an inbox request")
        request_seq = key[0]
        items.extend(
            {
                "request_seq": request_seq,
                "table_name": item.table,
                "position": item.position,
                "record": item.record,
                "column_name": item.column,
                "reason": item.reason,
            }
            for item in entry.items
        )
    if items:
        connection.execute(INBOX_ITEMS.insert(), items)


def find_answer(
    connection: sa.Connection, principal: str, endpoint: str, idempotency_key: str
) -> StoredAnswer | None:
    """The stored answer of the request with this key, if there is one."""
    row = connection.execute(
        sa.select(INBOX_REQUESTS.c.answer, INBOX_REQUESTS.c.body_digest).where(
            INBOX_REQUESTS.c.principal == principal,
            INBOX_REQUESTS.c.endpoint == endpoint,
            INBOX_REQUESTS.c.idempotency_key == idempotency_key,
        )
    ).first()
    return None if row is None else StoredAnswer(row.answer, row.body_digest, replayed=True)


def claim_requests(
    connection: sa.Connection,
    owner: str,
    *,
    now: datetime,
    lease: timedelta,
    max_items: int,
    take_over: bool = False,
) -> list[int]:
    """Claim the oldest pending requests, whole, until they hold ``max_items`` items (at
    least one request); returns their sequence numbers in order. ``take_over`` also takes
    requests another drainer holds a lease on (safe: ingest is idempotent)."""
    requests = INBOX_REQUESTS.c
    claimable = requests.status == InboxStatus.PENDING.value
    if not take_over:
        claimable &= sa.or_(requests.claimed_until.is_(None), requests.claimed_until < now)
    candidates = (
        sa.select(requests.request_seq, requests.item_count)
        .where(claimable)
        .order_by(requests.request_seq)
        .limit(max(1, max_items))
    )
    if connection.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    chosen: list[int] = []
    total = 0
    for request_seq, items in connection.execute(candidates):
        if chosen and total + items > max_items:
            break
        chosen.append(int(request_seq))
        total += items
    if not chosen:
        return []
    # The same condition again: on SQLite two drainers may both have read these rows;
    # the database's write lock lets only the first UPDATE take them.
    connection.execute(
        INBOX_REQUESTS.update()
        .where(requests.request_seq.in_(chosen), claimable)
        .values(claimed_by=owner, claimed_until=now + lease)
    )
    taken = connection.execute(
        sa.select(requests.request_seq)
        .where(requests.request_seq.in_(chosen), requests.claimed_by == owner)
        .order_by(requests.request_seq)
    )
    return [int(seq) for (seq,) in taken]


def claim_holders(connection: sa.Connection) -> list[str]:
    """Who holds claims on pending requests now (drainer names)."""
    requests = INBOX_REQUESTS.c
    rows = connection.execute(
        sa.select(requests.claimed_by)
        .where(requests.status == InboxStatus.PENDING.value, requests.claimed_by.is_not(None))
        .distinct()
    )
    return [str(holder) for (holder,) in rows]


def release_claims_of(connection: sa.Connection, holder: str) -> int:
    """Give back every claim ``holder`` holds (a drainer known to be dead)."""
    requests = INBOX_REQUESTS.c
    result = connection.execute(
        INBOX_REQUESTS.update()
        .where(requests.claimed_by == holder, requests.status == InboxStatus.PENDING.value)
        .values(claimed_by=None, claimed_until=None)
    )
    return int(result.rowcount)


def claimed_items(connection: sa.Connection, request_seqs: Sequence[int]) -> list[ClaimedItem]:
    """The items of the given requests, in the order they were appended."""
    items = INBOX_ITEMS.c
    rows = connection.execute(
        sa.select(
            items.item_seq,
            items.request_seq,
            items.table_name,
            items.record,
            items.column_name,
            items.reason,
        )
        .where(items.request_seq.in_(list(request_seqs)))
        .order_by(items.item_seq)
    )
    return [ClaimedItem(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def complete_requests(
    connection: sa.Connection, request_seqs: Sequence[int], *, now: datetime
) -> None:
    """Mark the requests drained and drop their items (the warehouse holds them now)."""
    seqs = list(request_seqs)
    connection.execute(INBOX_ITEMS.delete().where(INBOX_ITEMS.c.request_seq.in_(seqs)))
    connection.execute(
        INBOX_REQUESTS.update()
        .where(INBOX_REQUESTS.c.request_seq.in_(seqs))
        .values(status=InboxStatus.DONE.value, drained_at=now, claimed_by=None, claimed_until=None)
    )


def release_requests(
    connection: sa.Connection,
    request_seqs: Sequence[int],
    *,
    error: str | None = None,
    max_attempts: int = 3,
) -> None:
    """Give claimed requests back. With an ``error`` the attempt counts; a request that
    failed ``max_attempts`` times when drained alone is set aside as failed."""
    seqs = list(request_seqs)
    requests = INBOX_REQUESTS.c
    values: dict[str, object] = {"claimed_by": None, "claimed_until": None}
    if error is not None:
        values |= {"attempts": requests.attempts + 1, "last_error": error[:2000]}
    connection.execute(INBOX_REQUESTS.update().where(requests.request_seq.in_(seqs)).values(values))
    if error is not None and len(seqs) == 1:
        connection.execute(
            INBOX_REQUESTS.update()
            .where(requests.request_seq == seqs[0], requests.attempts >= max_attempts)
            .values(status=InboxStatus.FAILED.value)
        )


def prune_inbox(connection: sa.Connection, *, drained_before: datetime) -> int:
    """Forget requests drained before the cutoff (their idempotency keys expire with them)."""
    result = connection.execute(
        INBOX_REQUESTS.delete().where(
            INBOX_REQUESTS.c.status == InboxStatus.DONE.value,
            INBOX_REQUESTS.c.drained_at < drained_before,
        )
    )
    return int(result.rowcount)


def inbox_counts(connection: sa.Connection) -> dict[str, int]:
    """Requests per status (``pending``, ``done``, ``failed``), zero when absent."""
    counts = dict.fromkeys((s.value for s in InboxStatus), 0)
    rows = connection.execute(
        sa.select(INBOX_REQUESTS.c.status, sa.func.count()).group_by(INBOX_REQUESTS.c.status)
    )
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts
