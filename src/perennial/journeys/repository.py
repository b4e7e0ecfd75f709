"""Save, publish, pause, resume and archive journeys: the status rules in one place.

A save never changes what runs: it adds a version (a draft until published).
Publishing makes the newest version live for new entries only; runs keep the
version they started on. Status moves ``draft -> active <-> paused``, and any
status may be archived, which is final (a journey's name and history stay, so
the reports of its past runs keep their meaning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from perennial.errors import ExitCode, PerennialError
from perennial.journeys.document import Journey
from perennial.journeys.loading import journey_json, parse_journey
from perennial.journeys.tables import JOURNEY_VERSIONS, JOURNEYS
from perennial.store.operational import utc

__all__ = [
    "JourneyStateError",
    "SavedJourney",
    "UnknownJourney",
    "change_status",
    "get_journey",
    "journey_version",
    "list_journeys",
    "publish_latest",
    "save_version",
]


class UnknownJourney(PerennialError):
    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, name: str, version: int | None = None) -> None:
        self.name = name
        what = f"no version {version} of journey {name!r}" if version else f"no journey {name!r}"
        super().__init__(what)


class JourneyStateError(PerennialError):
    """A status change the journey's current status does not allow."""

    exit_code = ExitCode.CONFIG


@dataclass(frozen=True)
class SavedJourney:
    name: str
    status: str
    latest_version: int
    live_version: int | None
    created_at: datetime
    updated_at: datetime
    updated_by: str
    title: str


_MOVES = {
    "pause": ({"active"}, "paused"),
    "resume": ({"paused"}, "active"),
    "archive": ({"draft", "active", "paused"}, "archived"),
}


def save_version(connection: sa.Connection, journey: Journey, *, actor: str, now: datetime) -> int:
    """Store ``journey`` as the next version of its name (a draft); returns the number."""
    header = _header(connection, journey.journey, lock=True)
    if header is not None and header.status == "archived":
        raise JourneyStateError(
            f"journey {journey.journey!r} is archived; save it under a new name"
        )
    version = 1 if header is None else header.latest_version + 1
    connection.execute(
        JOURNEY_VERSIONS.insert().values(
            name=journey.journey,
            version=version,
            document=journey_json(journey),
            created_at=now,
            created_by=actor,
        )
    )
    if header is None:
        connection.execute(
            JOURNEYS.insert().values(
                name=journey.journey,
                status="draft",
                latest_version=version,
                live_version=None,
                created_at=now,
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        connection.execute(
            JOURNEYS.update()
            .where(JOURNEYS.c.name == journey.journey)
            .values(latest_version=version, updated_at=now, updated_by=actor)
        )
    return version


def publish_latest(connection: sa.Connection, name: str, *, actor: str, now: datetime) -> int:
    """Make the newest version live (status active); returns its number."""
    header = _header(connection, name, lock=True)
    if header is None:
        raise UnknownJourney(name)
    if header.status == "archived":
        raise JourneyStateError(f"journey {name!r} is archived and cannot be published")
    version = int(header.latest_version)
    connection.execute(
        JOURNEYS.update()
        .where(JOURNEYS.c.name == name)
        .values(status="active", live_version=version, updated_at=now, updated_by=actor)
    )
    connection.execute(
        JOURNEY_VERSIONS.update()
        .where(JOURNEY_VERSIONS.c.name == name, JOURNEY_VERSIONS.c.version == version)
        .where(JOURNEY_VERSIONS.c.published_at.is_(None))
        .values(published_at=now)
    )
    return version


def change_status(
    connection: sa.Connection, name: str, move: str, *, actor: str, now: datetime
) -> str:
    """``pause``, ``resume`` or ``archive``; returns the new status."""
    allowed, target = _MOVES[move]
    header = _header(connection, name, lock=True)
    if header is None:
        raise UnknownJourney(name)
    if header.status not in allowed:
        raise JourneyStateError(
            f"cannot {move} journey {name!r}: it is {header.status} "
            f"(only {' or '.join(sorted(allowed))} journeys can be)"
        )
    connection.execute(
        JOURNEYS.update()
        .where(JOURNEYS.c.name == name)
        .values(status=target, updated_at=now, updated_by=actor)
    )
    return target


def journey_version(connection: sa.Connection, name: str, version: int | None = None) -> Journey:
    """A stored version (the latest when ``version`` is None), as a checked document."""
    header = _header(connection, name)
    if header is None:
        raise UnknownJourney(name)
    wanted = header.latest_version if version is None else version
    document = connection.execute(
        sa.select(JOURNEY_VERSIONS.c.document).where(
            JOURNEY_VERSIONS.c.name == name, JOURNEY_VERSIONS.c.version == wanted
        )
    ).scalar()
    if document is None:
        raise UnknownJourney(name, wanted)
    return parse_journey(json.loads(document), f"journey {name!r} version {wanted}")


def get_journey(connection: sa.Connection, name: str) -> SavedJourney:
    rows = _saved(connection, JOURNEYS.c.name == name)
    if not rows:
        raise UnknownJourney(name)
    return rows[0]


def list_journeys(connection: sa.Connection, *, archived: bool = False) -> list[SavedJourney]:
    condition = sa.true() if archived else JOURNEYS.c.status != "archived"
    return _saved(connection, condition)


def _saved(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> list[SavedJourney]:
    query = (
        sa.select(JOURNEYS, JOURNEY_VERSIONS.c.document)
        .join(
            JOURNEY_VERSIONS,
            (JOURNEY_VERSIONS.c.name == JOURNEYS.c.name)
            & (JOURNEY_VERSIONS.c.version == JOURNEYS.c.latest_version),
        )
        .where(condition)
        .order_by(JOURNEYS.c.name)
    )
    return [
        SavedJourney(
            name=row.name,
            status=row.status,
            latest_version=row.latest_version,
            live_version=row.live_version,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            updated_by=row.updated_by,
            title=str(json.loads(row.document).get("title", "")),
        )
        for row in connection.execute(query)
    ]


def _header(
    connection: sa.Connection, name: str, *, lock: bool = False
) -> sa.Row[tuple[object, ...]] | None:
    query = sa.select(JOURNEYS).where(JOURNEYS.c.name == name)
    if lock:
        query = query.with_for_update()
    return connection.execute(query).first()
