"""Named positions in append-only inputs (the event feed, the segment log, a schedule's
ticks, the stage history's days), locked while a batch is read and moved in the same
transaction as what the batch created, so each batch is taken exactly once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perennial.journeys.tables import JOURNEY_CURSORS

__all__ = ["locked_cursor", "move_cursor"]


def locked_cursor(connection: sa.Connection, consumer: str, initial: int = 0) -> int:
    """The consumer's position, locked for this transaction (created at ``initial``)."""
    query = sa.select(JOURNEY_CURSORS.c.position).where(JOURNEY_CURSORS.c.consumer == consumer)
    position = connection.execute(query.with_for_update()).scalar()
    if position is None:
        # Workers starting together all find no row: the first insert wins, the others
        # insert nothing (a plain insert would fail them on the primary key).
        first = _dialect_insert(connection)(JOURNEY_CURSORS).values(
            consumer=consumer, position=initial
        )
        connection.execute(first.on_conflict_do_nothing(index_elements=["consumer"]))
        position = connection.execute(query.with_for_update()).scalar()
    return int(position if position is not None else initial)


def move_cursor(connection: sa.Connection, consumer: str, position: int) -> None:
    connection.execute(
        JOURNEY_CURSORS.update()
        .where(JOURNEY_CURSORS.c.consumer == consumer)
        .values(position=position)
    )


def _dialect_insert(connection: sa.Connection) -> Any:
    """The dialect's own insert, which has ``on_conflict_do_nothing``."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
