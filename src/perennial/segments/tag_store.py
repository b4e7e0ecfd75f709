"""Tags in the operational store: their definitions and who carries them, since when and why.

A tag is a name and, optionally, a value (``favourite_category = books``). Four
sources set tags, and each row says which: ``rule`` (an expression, refreshed
like a segment), ``computed`` (a built-in derivation such as price sensitivity),
``import`` (a CSV of ids) and ``manual`` (an agent or the API). A rule or computed
refresh replaces only the rows of its own source for its tag, so a manual tag of
the same name is never overwritten by a refresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pyarrow as pa
import sqlalchemy as sa

from perennial.segments.repository import check_name
from perennial.segments.tables import CUSTOMER_TAGS, TAGS
from perennial.store.operational import utc

__all__ = [
    "CustomerTag",
    "TagDefinition",
    "TagKind",
    "define_tag",
    "get_tag",
    "known_tag_names",
    "list_tags",
    "remove_tag",
    "replace_source_rows",
    "set_tags",
    "tag_counts",
    "tags_of",
    "tags_table",
]

_BATCH = 5000


class TagKind(StrEnum):
    RULE = "rule"
    COMPUTED = "computed"
    IMPORT = "import"
    MANUAL = "manual"


@dataclass(frozen=True)
class TagDefinition:
    name: str
    kind: TagKind
    description: str
    expression: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CustomerTag:
    customer_id: str
    tag: str
    value: str | None
    source: str
    reason: str
    set_at: datetime
    set_by: str


def define_tag(
    connection: sa.Connection,
    *,
    name: str,
    kind: TagKind,
    description: str,
    expression: str | None,
    now: datetime,
) -> TagDefinition:
    """Create or update a tag definition (a new version when the expression changes)."""
    check_name(name, "tag")
    current = get_tag(connection, name)
    if current is None:
        connection.execute(
            TAGS.insert().values(
                name=name,
                kind=kind.value,
                description=description,
                expression=expression,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        changed = (current.kind, current.expression) != (kind, expression)
        connection.execute(
            TAGS.update()
            .where(TAGS.c.name == name)
            .values(
                kind=kind.value,
                description=description,
                expression=expression,
                version=current.version + int(changed),
                updated_at=now,
            )
        )
    defined = get_tag(connection, name)
    if defined is None:  # pragma: no cover - written above in the same transaction
        raise RuntimeError(f"tag {name!r} vanished while being defined")
    return defined


def get_tag(connection: sa.Connection, name: str) -> TagDefinition | None:
    row = connection.execute(sa.select(TAGS).where(TAGS.c.name == name)).first()
    return None if row is None else _definition(row)


def list_tags(connection: sa.Connection) -> list[TagDefinition]:
    return [_definition(row) for row in connection.execute(sa.select(TAGS).order_by(TAGS.c.name))]


def _definition(row: sa.Row[tuple[object, ...]]) -> TagDefinition:
    return TagDefinition(
        row.name,
        TagKind(row.kind),
        row.description,
        row.expression,
        row.version,
        utc(row.created_at),
        utc(row.updated_at),
    )


def known_tag_names(connection: sa.Connection) -> set[str]:
    """Defined tags and every tag some customer carries (imports and manual tags need
    no definition)."""
    defined = set(connection.scalars(sa.select(TAGS.c.name)))
    carried = set(connection.scalars(sa.select(CUSTOMER_TAGS.c.tag).distinct()))
    return defined | carried


def set_tags(connection: sa.Connection, rows: Sequence[CustomerTag]) -> int:
    """Upsert ``rows`` (a customer's tag is replaced by a newer one of any source)."""
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        for tag in {row.tag for row in chunk}:
            check_name(tag, "tag")
        keys = [(row.customer_id, row.tag) for row in chunk]
        connection.execute(
            CUSTOMER_TAGS.delete().where(
                sa.tuple_(CUSTOMER_TAGS.c.customer_id, CUSTOMER_TAGS.c.tag).in_(keys)
            )
        )
        connection.execute(CUSTOMER_TAGS.insert(), [row.__dict__ for row in chunk])
    return len(rows)


def remove_tag(connection: sa.Connection, customer_id: str, tag: str) -> bool:
    result = connection.execute(
        CUSTOMER_TAGS.delete().where(
            CUSTOMER_TAGS.c.customer_id == customer_id, CUSTOMER_TAGS.c.tag == tag
        )
    )
    return bool(result.rowcount)


def replace_source_rows(
    connection: sa.Connection,
    *,
    tag: str,
    source: TagKind,
    values: dict[str, str | None],
    reason: str,
    set_by: str,
    now: datetime,
) -> tuple[int, int]:
    """Make ``values`` (customer -> value) the tag's rows from ``source``; others of that
    source lose it. Rows whose value is unchanged keep their ``set_at``. Returns
    (set or changed, removed). Customers holding the tag from another source keep it."""
    current = {
        row.customer_id: row.value
        for row in connection.execute(
            sa.select(CUSTOMER_TAGS.c.customer_id, CUSTOMER_TAGS.c.value).where(
                CUSTOMER_TAGS.c.tag == tag, CUSTOMER_TAGS.c.source == source.value
            )
        )
    }
    others = set(
        connection.scalars(
            sa.select(CUSTOMER_TAGS.c.customer_id).where(
                CUSTOMER_TAGS.c.tag == tag, CUSTOMER_TAGS.c.source != source.value
            )
        )
    )
    removed = [customer for customer in current if customer not in values]
    for start in range(0, len(removed), _BATCH):
        connection.execute(
            CUSTOMER_TAGS.delete().where(
                CUSTOMER_TAGS.c.tag == tag,
                CUSTOMER_TAGS.c.customer_id.in_(removed[start : start + _BATCH]),
            )
        )
    changed = [
        CustomerTag(customer, tag, value, source.value, reason, now, set_by)
        for customer, value in values.items()
        if customer not in others and (customer not in current or current[customer] != value)
    ]
    set_tags(connection, changed)
    return len(changed), len(removed)


def tags_of(connection: sa.Connection, customer_id: str) -> list[CustomerTag]:
    query = (
        sa.select(CUSTOMER_TAGS)
        .where(CUSTOMER_TAGS.c.customer_id == customer_id)
        .order_by(CUSTOMER_TAGS.c.tag)
    )
    tags = [CustomerTag(*tuple(row)) for row in connection.execute(query)]
    return [dataclasses.replace(tag, set_at=utc(tag.set_at)) for tag in tags]


def tag_counts(connection: sa.Connection) -> dict[str, int]:
    query = sa.select(CUSTOMER_TAGS.c.tag, sa.func.count()).group_by(CUSTOMER_TAGS.c.tag)
    return {tag: int(count) for tag, count in connection.execute(query)}


def tags_table(connection: sa.Connection, names: Iterable[str]) -> pa.Table:
    """``customer_id, tag, value`` of the customers carrying any of ``names``."""
    wanted = sorted(set(names))
    rows = connection.execute(
        sa.select(CUSTOMER_TAGS.c.customer_id, CUSTOMER_TAGS.c.tag, CUSTOMER_TAGS.c.value).where(
            CUSTOMER_TAGS.c.tag.in_(wanted)
        )
    ).all()
    columns: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return pa.table(
        {
            "customer_id": pa.array(columns[0], pa.string()),
            "tag": pa.array(columns[1], pa.string()),
            "value": pa.array(columns[2], pa.string()),
        }
    )
