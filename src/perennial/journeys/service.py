"""Journeys as one service for the CLI, the API and the page: save, publish, status.

Publishing checks the document against the store (segments, event types, fields,
template variables; see :mod:`.publish_checks`) and stores the version and makes
it live in one transaction, so a journey with any problem changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from perennial.config import Settings
from perennial.journeys.advance import Advancer
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.document import Journey, SendStep
from perennial.journeys.enrolment import EnrolCounts, EntryRequest
from perennial.journeys.graph import Problem
from perennial.journeys.loading import JourneyInvalid, parse_journey
from perennial.journeys.publish_checks import publish_problems
from perennial.journeys.reports import (
    RunRow,
    SendRow,
    StepCounts,
    customer_timeline,
    run_totals,
    runs_page,
    sends_page,
    step_counts,
)
from perennial.journeys.repository import (
    SavedJourney,
    change_status,
    get_journey,
    journey_version,
    list_journeys,
    publish_latest,
    save_version,
)
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.trigger_segments import trigger_condition, trigger_segment_name
from perennial.segments.service import SegmentService
from perennial.store.operational import create_engine_for, migrate

__all__ = ["JourneyService", "Preview", "Published"]


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    status: str


@dataclass(frozen=True)
class Preview:
    customer_id: str
    channel: str
    locale: str
    subject: str | None
    text: str
    html: str | None


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
        self._keep_trigger_segment(journey)
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
        self._keep_trigger_segment(journey)
        with self._operational.begin() as connection:
            version = publish_latest(connection, name, actor=actor, now=self._settings.now())
        return Published(name, version, "active")

    def _keep_trigger_segment(self, journey: Journey) -> None:
        """Save the managed segment an inactivity, prediction or date trigger runs on (see
        :mod:`.scheduled`), before the version goes live; its save-time members are not
        entries."""
        condition = trigger_condition(journey.trigger)
        if condition is None:
            return
        self._segments.save(
            trigger_segment_name(journey.journey),
            condition,
            title=f"journey {journey.journey}: trigger",
            description="Kept by the journey's trigger; publishing the journey rewrites it.",
            user=f"journey:{journey.journey}",
        )

    def change_status(self, name: str, move: str, *, actor: str) -> str:
        with self._operational.begin() as connection:
            return change_status(connection, name, move, actor=actor, now=self._settings.now())

    def get(self, name: str) -> SavedJourney:
        with self._operational.connect() as connection:
            return get_journey(connection, name)

    def document(self, name: str, version: int | None = None) -> Journey:
        with self._operational.connect() as connection:
            return journey_version(connection, name, version)

    def saved(self, *, archived: bool = False) -> list[SavedJourney]:
        with self._operational.connect() as connection:
            return list_journeys(connection, archived=archived)

    # -- checks without saving ---------------------------------------------------------------

    def problems(self, raw: object, *, source: str = "journey") -> list[Problem]:
        """Every problem of a document (schema, graph, languages, then the store's names)."""
        try:
            journey = parse_journey(raw, source)
            self.check_for_publish(journey, source=source)
        except JourneyInvalid as error:
            return error.problems
        return []

    def preview(self, journey: Journey, step: str, customer_id: str) -> Preview:
        """A send step's message rendered for one customer (their profile, their locale)."""
        chosen = journey.steps.get(step)
        if not isinstance(chosen, SendStep):
            raise JourneyInvalid("preview", [Problem(f"steps.{step}", "is not a send step")])
        now = self._settings.now()
        customers = WarehouseCustomers(self._settings, self._operational)
        with self._operational.connect() as connection:
            advancer = Advancer(connection, customers, {}, now, self._settings)
            rendered = advancer.render_message(chosen, customer_id)
        return Preview(customer_id, chosen.channel, **rendered)

    # -- runs ----------------------------------------------------------------------------------

    def enroll(self, name: str, customers: Sequence[str], *, occurrence: str) -> EnrolCounts:
        """Enter customers by hand (the journey must be active and its trigger manual or any)."""
        now = self._settings.now()
        runtime = JourneyRuntime(
            self._settings, self._operational, WarehouseCustomers(self._settings, self._operational)
        )
        requests = [EntryRequest(customer, f"manual:{occurrence}", now) for customer in customers]
        return runtime.enroll(name, requests, now)

    def steps(self, name: str) -> dict[str, StepCounts]:
        with self._operational.connect() as connection:
            get_journey(connection, name)
            return step_counts(connection, name)

    def totals(self) -> dict[str, dict[str, int]]:
        with self._operational.connect() as connection:
            return run_totals(connection)

    def runs(self, name: str, **options: Any) -> list[RunRow]:
        with self._operational.connect() as connection:
            get_journey(connection, name)
            return runs_page(connection, name, **options)

    def sends(self, name: str, **options: Any) -> list[SendRow]:
        with self._operational.connect() as connection:
            get_journey(connection, name)
            return sends_page(connection, name, **options)

    def timeline(self, customer_id: str) -> list[dict[str, Any]]:
        with self._operational.connect() as connection:
            return customer_timeline(connection, customer_id)
