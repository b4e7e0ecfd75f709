"""Journeys as one service for the CLI, the API and the page: save, publish, status.

Publishing checks the document against the store (segments, event types, fields,
template variables; see :mod:`.publish_checks`) and stores the version and makes
it live in one transaction, so a journey with any problem changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from perennial.config import Settings
from perennial.journeys.document import Journey
from perennial.journeys.loading import JourneyInvalid
from perennial.journeys.publish_checks import publish_problems
from perennial.journeys.repository import (
    SavedJourney,
    change_status,
    get_journey,
    journey_version,
    list_journeys,
    publish_latest,
    save_version,
)
from perennial.segments.service import SegmentService
from perennial.store.operational import create_engine_for, migrate

__all__ = ["JourneyService", "Published"]


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    status: str


class JourneyService:
    def __init__(self, settings: Settings, operational: sa.Engine | None = None) -> None:
        self._settings = settings
        self._operational = operational or create_engine_for(settings)
        self._segments = SegmentService(settings, self._operational)

    @classmethod
    def migrated(cls, settings: Settings) -> JourneyService:
        migrate(settings)
        return cls(settings)

    @property
    def operational(self) -> sa.Engine:
        return self._operational

    def check_for_publish(self, journey: Journey, *, source: str) -> None:
        """Raise :class:`JourneyInvalid` listing every name the store does not know."""
        catalog = self._segments.catalog()
        problems = publish_problems(journey, catalog, self._segments.check)
        if problems:
            raise JourneyInvalid(source, problems)

    def save_draft(self, journey: Journey, *, actor: str) -> int:
        """Store a new version without making it live (only the document check applies)."""
        with self._operational.begin() as connection:
            return save_version(connection, journey, actor=actor, now=self._settings.now())

    def publish(self, journey: Journey, *, actor: str, source: str = "journey") -> Published:
        """Check ``journey`` against the store, save it as a new version and make it live.

        New entries use the new version; runs already started keep theirs.
        """
        self.check_for_publish(journey, source=source)
        now = self._settings.now()
        with self._operational.begin() as connection:
            save_version(connection, journey, actor=actor, now=now)
            version = publish_latest(connection, journey.journey, actor=actor, now=now)
        return Published(journey.journey, version, "active")

    def publish_saved(self, name: str, *, actor: str) -> Published:
        """Make the newest saved version (a draft) live, after the store checks."""
        with self._operational.connect() as connection:
            journey = journey_version(connection, name)
        self.check_for_publish(journey, source=f"journey {name!r}")
        with self._operational.begin() as connection:
            version = publish_latest(connection, name, actor=actor, now=self._settings.now())
        return Published(name, version, "active")

    def change_status(self, name: str, move: str, *, actor: str) -> str:
        with self._operational.begin() as connection:
            return change_status(connection, name, move, actor=actor, now=self._settings.now())

    def get(self, name: str) -> SavedJourney:
        with self._operational.connect() as connection:
            return get_journey(connection, name)

    def document(self, name: str, version: int | None = None) -> Journey:
        with self._operational.connect() as connection:
            return journey_version(connection, name, version)

    def list(self, *, archived: bool = False) -> list[SavedJourney]:
        with self._operational.connect() as connection:
            return list_journeys(connection, archived=archived)
