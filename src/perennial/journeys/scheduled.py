"""Triggers that no arriving event fires: a condition becoming true, a stage change, a schedule.

How each is run, and why so:

- **inactivity, prediction, date**: each is a condition that *becomes* true ("no
  ``login`` for 30 days", "churn probability above 0.6", "birthday in 3 days"). At
  publish the journey gets a managed segment (:func:`trigger_segment_name`) holding
  :func:`trigger_condition`. The live segment engine already notices the moment such a
  condition turns true (events re-evaluate the customers they touch; the clock
  re-evaluates time-relative conditions every ``segment_refresh_seconds``; a profile or
  prediction refresh re-evaluates profile fields) and logs an ``enter``; the runtime
  enrols on those enters as for a ``segment_enter`` trigger, except those a save of the
  definition makes: a customer who was inactive before the journey existed did not
  *become* inactive now. A date trigger's run starts at its local time ``at`` that day.
- **stage_change**: the lifecycle history's transitions (customer, from, to, day), read
  after a per-journey cursor on the day, so each day's moves enrol once.
- **schedule**: the cron expression's ticks in each customer's own time zone. A cursor
  per journey and zone holds the last tick handled; after downtime only the latest
  missed tick fires (a weekly newsletter sent four times on restart would be worse than
  once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import sqlalchemy as sa
from cronsim import CronSim

from perennial.channels.guardrails import local_zone
from perennial.config import Settings
from perennial.journeys.cursors import locked_cursor, move_cursor
from perennial.journeys.document import (
    ScheduleTrigger,
    StageChangeTrigger,
)
from perennial.journeys.enrolment import EntryRequest, LiveJourney, enroll
from perennial.lifecycle.history import HISTORY_SCHEMAS, STAGE_TRANSITIONS_TABLE
from perennial.segments.tables import SEGMENT_MEMBERS
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse

__all__ = ["TriggerClock", "latest_tick"]


def latest_tick(cron: str, zone: ZoneInfo, after: datetime, now: datetime) -> datetime | None:
    """The last tick of ``cron`` in ``zone`` in (``after``, ``now``]; None if there is none."""
    ticks = CronSim(cron, (now + timedelta(seconds=1)).astimezone(zone), reverse=True)
    tick: datetime = next(ticks)
    return tick if tick > after else None


class TriggerClock:
    """Enrols the stage-change and schedule journeys; one per worker.

    Each check is one transaction per journey (and zone) that locks the journey's cursor,
    enrols and moves the cursor, so two workers never enrol the same tick or day twice.
    """

    def __init__(
        self,
        settings: Settings,
        operational: sa.Engine,
        *,
        every: timedelta = timedelta(seconds=30),
    ) -> None:
        self._settings = settings
        self._operational = operational
        self._every = every
        self._next_check: datetime | None = None

    def run_due(self, live: Mapping[str, LiveJourney], now: datetime) -> int:
        """Enrol what became due since the last check (at most every ``every``)."""
        if self._next_check is not None and now < self._next_check:
            return 0
        self._next_check = now + self._every
        entered = 0
        for journey in live.values():
            trigger = journey.document.trigger
            if isinstance(trigger, StageChangeTrigger):
                entered += self._stage_changes(journey, trigger, now)
            elif isinstance(trigger, ScheduleTrigger):
                entered += self._schedule(journey, trigger, now)
        return entered

    # -- stage changes --------------------------------------------------------------------

    def _stage_changes(self, live: LiveJourney, trigger: StageChangeTrigger, now: datetime) -> int:
        zone = ZoneInfo(self._settings.default_timezone)
        consumer = f"stage:{live.name}:v{live.version}"
        published = (live.published_at or now).astimezone(zone).date()
        with self._operational.begin() as connection:
            last_day = locked_cursor(connection, consumer, published.toordinal() - 1)
            today = now.astimezone(zone).date()
            moves = _transitions_between(self._settings, date.fromordinal(last_day), today, trigger)
            if moves.num_rows == 0:
                return 0
            days = moves.column("day").to_pylist()
            requests = [
                EntryRequest(
                    customer,
                    f"stage:{day.isoformat()}:{source or ''}>{target}",
                    now,
                    {"from_stage": source, "to_stage": target},
                )
                for customer, source, target, day in zip(
                    moves.column("customer_id").to_pylist(),
                    moves.column("from_stage").to_pylist(),
                    moves.column("to_stage").to_pylist(),
                    days,
                    strict=True,
                )
            ]
            counts = enroll(connection, live, requests, now)
            move_cursor(connection, consumer, max(days).toordinal())
            return counts.entered + counts.holdout

    # -- schedules -----------------------------------------------------------------------

    def _schedule(self, live: LiveJourney, trigger: ScheduleTrigger, now: datetime) -> int:
        audience = self._audience(trigger.segment)
        by_zone: defaultdict[str, list[str]] = defaultdict(list)
        for customer, zone_name in audience.items():
            zone = local_zone(zone_name, self._settings.default_timezone)
            by_zone[zone.key].append(customer)
        published = live.published_at or now
        entered = 0
        for zone_key, customers in sorted(by_zone.items()):
            zone = ZoneInfo(zone_key)
            consumer = f"schedule:{live.name}:v{live.version}:{zone_key}"
            with self._operational.begin() as connection:
                last = locked_cursor(connection, consumer, int(published.timestamp()))
                tick = latest_tick(trigger.cron, zone, datetime.fromtimestamp(last, zone), now)
                if tick is None:
                    continue
                occurrence = f"schedule:{tick.isoformat()}"
                requests = [EntryRequest(c, occurrence, tick) for c in sorted(customers)]
                counts = enroll(connection, live, requests, now)
                move_cursor(connection, consumer, int(tick.timestamp()))
                entered += counts.entered + counts.holdout
        return entered

    def _audience(self, segment: str | None) -> dict[str, str | None]:
        """Who a schedule enters (a segment's members, or every customer) and their zones."""
        if segment is not None:
            with self._operational.connect() as connection:
                members = list(
                    connection.execute(
                        sa.select(SEGMENT_MEMBERS.c.customer_id).where(
                            SEGMENT_MEMBERS.c.name == segment
                        )
                    ).scalars()
                )
            zones = _customer_zones(self._settings, members)
            return {customer: zones.get(customer) for customer in members}
        return _customer_zones(self._settings, None)


def _customer_zones(settings: Settings, customers: Sequence[str] | None) -> dict[str, str | None]:
    """Customer id -> time zone name from the warehouse's customer records."""
    snapshot = Warehouse(settings.warehouse).snapshot()
    if snapshot.version == 0 or not snapshot.paths("customers"):
        return {}
    with open_backend(settings) as backend:
        table = backend.table("customers", snapshot)
        selected = table.select("customer_id", "timezone")
        if customers is not None:
            wanted = backend.register_arrow(
                "perennial_schedule_audience",
                pa.table({"customer_id": pa.array(sorted(set(customers)), pa.string())}),
            )
            selected = selected.semi_join(wanted, "customer_id")
        rows = backend.to_pyarrow(selected)
    return dict(
        zip(
            rows.column("customer_id").to_pylist(), rows.column("timezone").to_pylist(), strict=True
        )
    )


def _transitions_between(
    settings: Settings, after: date, until: date, trigger: StageChangeTrigger
) -> pa.Table:
    """The stored moves of the days after ``after`` up to ``until`` that match the
    trigger, oldest day first."""
    snapshot = Warehouse(settings.warehouse).snapshot()
    if snapshot.version == 0 or not snapshot.paths(STAGE_TRANSITIONS_TABLE):
        return HISTORY_SCHEMAS[STAGE_TRANSITIONS_TABLE].empty_table()
    with open_backend(settings) as backend:
        moves = backend.table(
            STAGE_TRANSITIONS_TABLE, snapshot, schema=HISTORY_SCHEMAS[STAGE_TRANSITIONS_TABLE]
        )
        wanted = (moves.day > after) & (moves.day <= until)
        if trigger.to_stage is not None:
            wanted &= moves.to_stage == trigger.to_stage
        if trigger.from_stage is not None:
            wanted &= moves.from_stage == trigger.from_stage
        chosen = moves.filter(wanted).select("customer_id", "from_stage", "to_stage", "day")
        return backend.to_pyarrow(chosen.distinct().order_by(["day", "customer_id"]))
