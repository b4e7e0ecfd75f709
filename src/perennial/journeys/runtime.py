"""The journey runtime's scheduler side: enrol from triggers, wake due runs, advance them.

Each piece of work is one transaction that claims what it works on:
- **signals** (events as they arrive) and **segment changes** are append-only
  logs read after a cursor; the cursor row is locked while a batch is read and
  moved in the same transaction as the runs it creates or wakes, so a batch is
  taken exactly once whatever crashes;
- **due runs** are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (many
  workers take disjoint batches); on SQLite the database's single writer does
  the same job for the one worker it supports.
Paused journeys take no entries and their runs are not claimed; they resume
where they stood.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from perennial.channels.guardrails import local_zone
from perennial.config import Settings
from perennial.ingest.event_feed import EVENT_FEED, append_feed
from perennial.journeys.advance import Advancer, AdvanceReport, RunState
from perennial.journeys.cursors import locked_cursor, move_cursor
from perennial.journeys.customers import CustomerContext
from perennial.journeys.document import DateTrigger, EventTrigger, Journey, SegmentTrigger
from perennial.journeys.enrolment import ONGOING, EnrolCounts, EntryRequest, LiveJourney, enroll
from perennial.journeys.loading import parse_journey
from perennial.journeys.scheduled import TriggerClock
from perennial.journeys.tables import (
    JOURNEY_LOG,
    JOURNEY_RUNS,
    JOURNEY_VERSIONS,
    JOURNEYS,
)
from perennial.journeys.trigger_segments import (
    SEGMENT_KEPT_TRIGGERS,
    date_trigger_start,
    trigger_segment_name,
)
from perennial.segments.parser import parse_property_filter
from perennial.segments.reference import properties_match
from perennial.segments.tables import SEGMENT_CHANGES
from perennial.store.operational import utc

__all__ = ["JourneyRuntime", "Signal", "record_signals"]

_SIGNALS = "signals"
_SEGMENT_CHANGES = "segment_changes"


@dataclass(frozen=True)
class Signal:
    """An event as it arrives: what waits, goals and event triggers listen for."""

    customer_id: str
    event_type: str
    at: datetime
    properties: Mapping[str, Any] | None = None
    key: str | None = None
    """What makes a repeat of the same event recognisable (its event id)."""


def record_signals(connection: sa.Connection, signals: Sequence[Signal]) -> None:
    """Append ``signals`` to the event feed in the caller's transaction (the ingest drain
    writes its own; this is for events made here, such as task outcomes, and tests)."""
    append_feed(
        connection,
        [
            {
                "event_key": signal.key or f"{signal.customer_id}:{signal.event_type}:{signal.at}",
                "customer_id": signal.customer_id,
                "event_type": signal.event_type,
                "properties": None
                if signal.properties is None
                else json.dumps(signal.properties, ensure_ascii=False, default=str),
                "at": signal.at,
            }
            for signal in signals
        ],
    )


@dataclass
class _Versions:
    """Published journey documents by (name, version), parsed once per process."""

    documents: dict[tuple[str, int], Journey] = field(default_factory=dict)

    def get(self, connection: sa.Connection, name: str, version: int) -> Journey:
        key = (name, version)
        if key not in self.documents:
            text = connection.execute(
                sa.select(JOURNEY_VERSIONS.c.document).where(
                    JOURNEY_VERSIONS.c.name == name, JOURNEY_VERSIONS.c.version == version
                )
            ).scalar_one()
            self.documents[key] = parse_journey(json.loads(text), f"{name} v{version}")
        return self.documents[key]


class JourneyRuntime:
    """One per worker process; every method is one or more short transactions."""

    def __init__(
        self,
        settings: Settings,
        operational: sa.Engine,
        customers: CustomerContext,
        *,
        owner: str = "worker",
        batch: int = 500,
    ) -> None:
        self._settings = settings
        self._operational = operational
        self._customers = customers
        self._owner = owner
        self._batch = batch
        self._versions = _Versions()
        self._clock = TriggerClock(settings, operational)

    # -- entries -------------------------------------------------------------------------

    def live(self, connection: sa.Connection) -> dict[str, LiveJourney]:
        """The active journeys, at their live versions."""
        rows = connection.execute(
            sa.select(JOURNEYS.c.name, JOURNEYS.c.live_version, JOURNEY_VERSIONS.c.published_at)
            .join(
                JOURNEY_VERSIONS,
                (JOURNEY_VERSIONS.c.name == JOURNEYS.c.name)
                & (JOURNEY_VERSIONS.c.version == JOURNEYS.c.live_version),
            )
            .where(JOURNEYS.c.status == "active")
        )
        return {
            name: LiveJourney(
                name,
                version,
                self._versions.get(connection, name, version),
                None if published is None else utc(published),
            )
            for name, version, published in rows
        }

    def enroll(self, name: str, requests: Sequence[EntryRequest], now: datetime) -> EnrolCounts:
        """Enter customers into ``name`` (manual and API enrolment)."""
        with self._operational.begin() as connection:
            live = self.live(connection).get(name)
            if live is None:
                counts = EnrolCounts()
                counts.refused["journey_not_active"] += len(requests)
                return counts
            return enroll(connection, live, requests, now)

    def read_signals(self, now: datetime) -> int:
        """Take the next batch of signals: goals convert, waits wake, triggers enrol."""
        with self._operational.begin() as connection:
            position = locked_cursor(connection, _SIGNALS)
            rows = connection.execute(
                sa.select(EVENT_FEED)
                .where(EVENT_FEED.c.seq > position)
                .order_by(EVENT_FEED.c.seq)
                .limit(self._batch)
            ).all()
            if not rows:
                return 0
            live = self.live(connection)
            for row in rows:
                self._convert_goals(connection, live, row, now)
                self._wake_waiting(connection, row, now)
            self._enrol_event_triggers(connection, live, rows, now)
            move_cursor(connection, _SIGNALS, int(rows[-1].seq))
            return len(rows)

    def read_segment_changes(self, now: datetime) -> int:
        """Take the next batch of segment enters and exits for segment triggers."""
        with self._operational.begin() as connection:
            position = locked_cursor(connection, _SEGMENT_CHANGES)
            rows = connection.execute(
                sa.select(SEGMENT_CHANGES)
                .where(SEGMENT_CHANGES.c.change_seq > position)
                .order_by(SEGMENT_CHANGES.c.change_seq)
                .limit(self._batch)
            ).all()
            if not rows:
                return 0
            for live in self.live(connection).values():
                trigger = live.document.trigger
                if isinstance(trigger, SegmentTrigger):
                    wanted = "enter" if trigger.type == "segment_enter" else "exit"
                    requests = [
                        EntryRequest(
                            row.customer_id, f"segment_change:{row.change_seq}", utc(row.at)
                        )
                        for row in rows
                        if row.name == trigger.segment
                        and row.change == wanted
                        and _after_publish(live, utc(row.at))
                    ]
                elif isinstance(trigger, SEGMENT_KEPT_TRIGGERS):
                    requests = self._condition_entries(live, rows, now)
                else:
                    continue
                if requests:
                    enroll(connection, live, requests, now)
            move_cursor(connection, _SEGMENT_CHANGES, int(rows[-1].change_seq))
            return len(rows)

    def _condition_entries(
        self, live: LiveJourney, rows: Sequence[Any], now: datetime
    ) -> list[EntryRequest]:
        """Entries from the enters of the journey's managed trigger segment; not those a
        save of its definition made (those customers met it before, they did not just)."""
        name = trigger_segment_name(live.name)
        enters = [
            row
            for row in rows
            if row.name == name
            and row.change == "enter"
            and row.trigger != "save"
            and _after_publish(live, utc(row.at))
        ]
        trigger = live.document.trigger
        if not isinstance(trigger, DateTrigger):
            return [
                EntryRequest(row.customer_id, f"segment_change:{row.change_seq}", utc(row.at))
                for row in enters
            ]
        profiles = self._customers.profiles([row.customer_id for row in enters], now)
        requests = []
        for row in enters:
            zone = local_zone(
                profiles.get(row.customer_id, {}).get("timezone"),
                self._settings.default_timezone,
            )
            entered = utc(row.at)
            day = entered.astimezone(zone).date().isoformat()
            requests.append(
                EntryRequest(
                    row.customer_id,
                    f"date:{trigger.field}:{day}",
                    entered,
                    start_at=date_trigger_start(trigger, entered, zone),
                )
            )
        return requests

    def read_scheduled(self, now: datetime) -> int:
        """Enrol the stage-change and schedule journeys that became due (see
        :mod:`.scheduled`); the clock checks at most every ``every`` seconds."""
        with self._operational.connect() as connection:
            live = self.live(connection)
        return self._clock.run_due(live, now)

    # -- due runs ------------------------------------------------------------------------------

    def advance_due(self, now: datetime) -> AdvanceReport:
        """Claim one batch of due runs of active journeys and advance them."""
        with self._operational.begin() as connection:
            runs = JOURNEY_RUNS.c
            active = sa.select(JOURNEYS.c.name).where(JOURNEYS.c.status == "active")
            query = (
                sa.select(JOURNEY_RUNS)
                .where(
                    runs.status.in_(ONGOING),
                    runs.due_at <= now,
                    runs.journey.in_(active.scalar_subquery()),
                )
                .order_by(runs.due_at)
                .limit(self._batch)
            )
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=JOURNEY_RUNS)
            claimed = [RunState.from_row(row) for row in connection.execute(query)]
            if not claimed:
                return AdvanceReport()
            documents = {
                (run.journey, run.version): self._versions.get(connection, run.journey, run.version)
                for run in claimed
            }
            advancer = Advancer(connection, self._customers, documents, now, self._settings)
            return advancer.advance(claimed)

    def run_until_idle(self, now: datetime, *, max_batches: int = 10_000) -> AdvanceReport:
        """Read every signal and change, then advance until nothing is due at ``now``."""
        while self.read_signals(now) or self.read_segment_changes(now):
            pass
        total = AdvanceReport()
        for _batch in range(max_batches):
            report = self.advance_due(now)
            if not report.runs:
                break
            total.runs += report.runs
            total.queued += report.queued
            total.finished.update(report.finished)
        return total

    # -- signals ---------------------------------------------------------------------------------

    def _convert_goals(
        self,
        connection: sa.Connection,
        live: Mapping[str, LiveJourney],
        signal: sa.Row[Any],
        now: datetime,
    ) -> None:
        journeys = [
            name
            for name, journey in live.items()
            if (goal := journey.document.goal) is not None
            and goal.event == signal.event_type
            and _matches(goal.where, signal.properties)
        ]
        if not journeys:
            return
        runs = JOURNEY_RUNS.c
        converted = connection.execute(
            sa.select(runs.run_id, runs.journey, runs.version, runs.step).where(
                runs.customer_id == signal.customer_id,
                runs.journey.in_(journeys),
                runs.status.in_(ONGOING),
                runs.entered_at <= signal.at,
            )
        ).all()
        for run in converted:
            connection.execute(
                JOURNEY_RUNS.update()
                .where(runs.run_id == run.run_id, runs.status.in_(ONGOING))
                .values(status="converted", due_at=None, wait_event=None, updated_at=now)
            )
        _log(connection, converted, signal.customer_id, "converted", signal.event_type, now)

    def _wake_waiting(self, connection: sa.Connection, signal: sa.Row[Any], now: datetime) -> None:
        runs = JOURNEY_RUNS.c
        waiting = connection.execute(
            sa.select(runs.run_id, runs.journey, runs.version, runs.step).where(
                runs.customer_id == signal.customer_id,
                runs.wait_event == signal.event_type,
                runs.status == "waiting",
                runs.waiting_since <= signal.at,
            )
        ).all()
        woken = []
        for run in waiting:
            step = self._versions.get(connection, run.journey, run.version).steps[run.step]
            if not _matches(getattr(step, "where", None), signal.properties):
                continue
            target = getattr(step, "on_event", run.step)
            connection.execute(
                JOURNEY_RUNS.update()
                .where(runs.run_id == run.run_id, runs.status == "waiting")
                .values(
                    status="active",
                    step=target,
                    due_at=now,
                    wait_event=None,
                    waiting_since=None,
                    updated_at=now,
                )
            )
            woken.append(run)
        _log(connection, woken, signal.customer_id, "event", signal.event_type, now)

    def _enrol_event_triggers(
        self,
        connection: sa.Connection,
        live: Mapping[str, LiveJourney],
        signals: Sequence[sa.Row[Any]],
        now: datetime,
    ) -> None:
        for journey in live.values():
            trigger = journey.document.trigger
            if not isinstance(trigger, EventTrigger):
                continue
            requests = [
                EntryRequest(
                    signal.customer_id,
                    f"event:{signal.event_key}",
                    utc(signal.at),
                    {"event": json.loads(signal.properties or "{}")},
                )
                for signal in signals
                if signal.event_type == trigger.event
                and _after_publish(journey, utc(signal.at))
                and _matches(trigger.where, signal.properties)
            ]
            if requests:
                enroll(connection, journey, requests, now)


def _after_publish(journey: LiveJourney, at: datetime) -> bool:
    """A trigger counts only from the moment its version went live (a journey published
    today does not enrol everyone who entered its segment last year)."""
    return journey.published_at is None or at >= journey.published_at


def _matches(where: str | None, properties: str | None) -> bool:
    return where is None or properties_match(parse_property_filter(where), properties)


def _log(
    connection: sa.Connection,
    runs: Sequence[Any],
    customer_id: str,
    what: str,
    detail: str,
    now: datetime,
) -> None:
    if runs:
        connection.execute(
            JOURNEY_LOG.insert(),
            [
                {
                    "journey": run.journey,
                    "version": run.version,
                    "run_id": run.run_id,
                    "customer_id": customer_id,
                    "step": run.step,
                    "what": what,
                    "at": now,
                    "detail": detail,
                }
                for run in runs
            ],
        )
