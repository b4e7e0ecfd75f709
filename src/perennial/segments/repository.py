"""Saved segments in the operational store: versions, members, the enter/exit log, sizes.

Every function takes an open SQLAlchemy connection and leaves the transaction to
the caller, so a save, a membership change and its log entries commit together
or not at all. Works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from perennial.errors import ConfigError
from perennial.segments.tables import (
    SEGMENT_CHANGES,
    SEGMENT_MEMBERS,
    SEGMENT_SIZES,
    SEGMENT_VERSIONS,
    SEGMENTS,
)
from perennial.store.operational import utc

__all__ = [
    "NAME_PATTERN",
    "MemberChange",
    "SavedSegment",
    "apply_changes",
    "archive_segment",
    "changes_after",
    "check_name",
    "current_members",
    "current_members_among",
    "get_segment",
    "list_segments",
    "members_page",
    "record_size",
    "save_segment",
    "segment_versions",
    "size_trend",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,99}")
_BATCH = 5000


@dataclass(frozen=True)
class SavedSegment:
    name: str
    version: int
    title: str
    description: str
    expression: str
    live: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    created_by: str
    members: int
    refreshed_at: datetime | None


@dataclass(frozen=True)
class MemberChange:
    """One line of the enter/exit log."""

    change_seq: int
    name: str
    customer_id: str
    change: str
    at: datetime
    version: int
    trigger: str


def check_name(name: str, noun: str = "segment") -> str:
    """``name`` if it is a valid segment or tag name, else :class:`ConfigError` saying why."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            noun,
            "name",
            f"a {noun} name is 1-100 letters, digits, '_' or '-', starting with a letter or "
            f"digit; got {name!r}",
        )
    return name


def _select_segments() -> sa.Select[tuple[object, ...]]:  # one row per saved segment
    joined = SEGMENTS.join(
        SEGMENT_VERSIONS,
        (SEGMENT_VERSIONS.c.name == SEGMENTS.c.name)
        & (SEGMENT_VERSIONS.c.version == SEGMENTS.c.current_version),
    )
    return sa.select(
        SEGMENTS.c.name,
        SEGMENTS.c.current_version,
        SEGMENT_VERSIONS.c.title,
        SEGMENT_VERSIONS.c.description,
        SEGMENT_VERSIONS.c.expression,
        SEGMENTS.c.live,
        SEGMENTS.c.archived,
        SEGMENTS.c.created_at,
        SEGMENTS.c.updated_at,
        SEGMENT_VERSIONS.c.created_by,
        SEGMENTS.c.members,
        SEGMENTS.c.refreshed_at,
    ).select_from(joined)


def _saved(row: sa.Row[tuple[object, ...]]) -> SavedSegment:
    values = tuple(row)
    saved = SavedSegment(*values)  # type: ignore[arg-type]
    return dataclasses.replace(
        saved,
        created_at=utc(saved.created_at),
        updated_at=utc(saved.updated_at),
        refreshed_at=None if saved.refreshed_at is None else utc(saved.refreshed_at),
    )


def list_segments(connection: sa.Connection, *, archived: bool = False) -> list[SavedSegment]:
    query = _select_segments().order_by(SEGMENTS.c.name)
    if not archived:
        query = query.where(SEGMENTS.c.archived.is_(False))
    return [_saved(row) for row in connection.execute(query)]


def get_segment(connection: sa.Connection, name: str) -> SavedSegment | None:
    row = connection.execute(_select_segments().where(SEGMENTS.c.name == name)).first()
    return None if row is None else _saved(row)


def segment_versions(connection: sa.Connection, name: str) -> list[sa.Row[tuple[object, ...]]]:
    query = (
        sa.select(SEGMENT_VERSIONS)
        .where(SEGMENT_VERSIONS.c.name == name)
        .order_by(SEGMENT_VERSIONS.c.version.desc())
    )
    return list(connection.execute(query))


def save_segment(
    connection: sa.Connection,
    *,
    name: str,
    title: str,
    description: str,
    expression: str,
    live: bool,
    user: str,
    now: datetime,
) -> SavedSegment:
    """Create the segment or add a version; an unchanged definition adds none."""
    check_name(name)
    current = get_segment(connection, name)
    if current is None:
        connection.execute(
            SEGMENTS.insert().values(
                name=name,
                current_version=1,
                live=live,
                archived=False,
                created_at=now,
                updated_at=now,
                refreshed_at=None,
                members=0,
            )
        )
        _insert_version(connection, name, 1, title, description, expression, user, now)
    else:
        same = (current.title, current.description, current.expression) == (
            title,
            description,
            expression,
        )
        version = current.version if same else current.version + 1
        if not same:
            _insert_version(connection, name, version, title, description, expression, user, now)
        connection.execute(
            SEGMENTS.update()
            .where(SEGMENTS.c.name == name)
            .values(current_version=version, live=live, archived=False, updated_at=now)
        )
    saved = get_segment(connection, name)
    if saved is None:  # pragma: no cover - written above in the same transaction
        raise RuntimeError(f"segment {name!r} vanished while being saved")
    return saved


def _insert_version(
    connection: sa.Connection,
    name: str,
    version: int,
    title: str,
    description: str,
    expression: str,
    user: str,
    now: datetime,
) -> None:
    connection.execute(
        SEGMENT_VERSIONS.insert().values(
            name=name,
            version=version,
            title=title,
            description=description,
            expression=expression,
            created_at=now,
            created_by=user,
        )
    )


def archive_segment(connection: sa.Connection, name: str, now: datetime) -> bool:
    """Archive ``name``: no longer refreshed or listed; its members exit. False if unknown."""
    result = connection.execute(
        SEGMENTS.update()
        .where(SEGMENTS.c.name == name)
        .values(archived=True, live=False, updated_at=now)
    )
    return bool(result.rowcount)


def current_members(connection: sa.Connection, name: str) -> list[str]:
    query = sa.select(SEGMENT_MEMBERS.c.customer_id).where(SEGMENT_MEMBERS.c.name == name)
    return list(connection.scalars(query))


def current_members_among(
    connection: sa.Connection, names: Collection[str], customers: Sequence[str]
) -> dict[str, set[str]]:
    """Which of ``customers`` each segment of ``names`` holds now: one query per chunk of
    customers for all the segments (the live path asks for dozens of segments at once)."""
    found: dict[str, set[str]] = {name: set() for name in names}
    for start in range(0, len(customers), _BATCH):
        chunk = list(customers[start : start + _BATCH])
        query = sa.select(SEGMENT_MEMBERS.c.name, SEGMENT_MEMBERS.c.customer_id).where(
            SEGMENT_MEMBERS.c.name.in_(sorted(found)), SEGMENT_MEMBERS.c.customer_id.in_(chunk)
        )
        for name, customer in connection.execute(query):
            found[name].add(customer)
    return found


def apply_changes(
    connection: sa.Connection,
    *,
    name: str,
    version: int,
    entered: Sequence[str],
    exited: Sequence[str],
    at: datetime,
    trigger: str,
) -> int:
    """Move members in and out and append one log line per change, in the caller's transaction.

    Returns the number of members afterwards."""
    for start in range(0, len(exited), _BATCH):
        chunk = list(exited[start : start + _BATCH])
        connection.execute(
            SEGMENT_MEMBERS.delete().where(
                SEGMENT_MEMBERS.c.name == name, SEGMENT_MEMBERS.c.customer_id.in_(chunk)
            )
        )
    if entered:
        connection.execute(
            SEGMENT_MEMBERS.insert(),
            [
                {"name": name, "customer_id": c, "entered_at": at, "version": version}
                for c in entered
            ],
        )
    log = [
        {
            "name": name,
            "customer_id": c,
            "change": kind,
            "at": at,
            "version": version,
            "trigger": trigger,
        }
        for kind, customers in (("enter", entered), ("exit", exited))
        for c in customers
    ]
    if log:
        connection.execute(SEGMENT_CHANGES.insert(), log)
    members = connection.scalar(
        sa.select(sa.func.count())
        .select_from(SEGMENT_MEMBERS)
        .where(SEGMENT_MEMBERS.c.name == name)
    )
    connection.execute(
        SEGMENTS.update()
        .where(SEGMENTS.c.name == name)
        .values(members=int(members or 0), refreshed_at=at)
    )
    record_size(connection, name, at.date(), int(members or 0))
    return int(members or 0)


def record_size(connection: sa.Connection, name: str, day: date, members: int) -> None:
    """The segment's size on ``day`` (the last one recorded that day wins)."""
    connection.execute(
        SEGMENT_SIZES.delete().where(SEGMENT_SIZES.c.name == name, SEGMENT_SIZES.c.day == day)
    )
    connection.execute(SEGMENT_SIZES.insert().values(name=name, day=day, members=members))


def size_trend(connection: sa.Connection, name: str, since: date) -> list[tuple[date, int]]:
    query = (
        sa.select(SEGMENT_SIZES.c.day, SEGMENT_SIZES.c.members)
        .where(SEGMENT_SIZES.c.name == name, SEGMENT_SIZES.c.day >= since)
        .order_by(SEGMENT_SIZES.c.day)
    )
    return [(row.day, row.members) for row in connection.execute(query)]


def members_page(
    connection: sa.Connection, name: str, *, after: str | None, limit: int
) -> list[tuple[str, datetime]]:
    """Members in customer-id order, ``limit`` after the id ``after`` (keyset pagination)."""
    query = sa.select(SEGMENT_MEMBERS.c.customer_id, SEGMENT_MEMBERS.c.entered_at).where(
        SEGMENT_MEMBERS.c.name == name
    )
    if after is not None:
        query = query.where(SEGMENT_MEMBERS.c.customer_id > after)
    query = query.order_by(SEGMENT_MEMBERS.c.customer_id).limit(limit)
    return [(row.customer_id, utc(row.entered_at)) for row in connection.execute(query)]


def changes_after(
    connection: sa.Connection,
    after_seq: int,
    *,
    limit: int,
    name: str | None = None,
    customer_id: str | None = None,
) -> list[MemberChange]:
    """Log lines with ``change_seq`` above ``after_seq``, oldest first (what journeys consume)."""
    query = sa.select(SEGMENT_CHANGES).where(SEGMENT_CHANGES.c.change_seq > after_seq)
    if name is not None:
        query = query.where(SEGMENT_CHANGES.c.name == name)
    if customer_id is not None:
        query = query.where(SEGMENT_CHANGES.c.customer_id == customer_id)
    query = query.order_by(SEGMENT_CHANGES.c.change_seq).limit(limit)
    changes = [MemberChange(*tuple(row)) for row in connection.execute(query)]
    return [dataclasses.replace(change, at=utc(change.at)) for change in changes]
