"""Triggers no arriving event fires, on the segments' demo store: a recurring schedule in
each customer's time zone, lifecycle stage changes from the stored history, and the
conditions a managed segment keeps (inactivity, a date field's day), each checked
against the customer records, the stored transitions and the events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from perennial.config import Settings
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.loading import JourneyInvalid, read_journey_text
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.scheduled import latest_tick
from perennial.journeys.service import JourneyService
from perennial.journeys.tables import JOURNEY_RUNS
from perennial.journeys.trigger_segments import trigger_condition, trigger_segment_name
from perennial.lifecycle.history import STAGE_TRANSITIONS_TABLE
from perennial.segments.service import SegmentService
from perennial.segments.tables import SEGMENT_CHANGES
from perennial.store.warehouse import Warehouse
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, SegmentStore

segment_store = segments_conftest.segment_store
SHANGHAI = ZoneInfo("Asia/Shanghai")

JOURNEY = """
journey: NAME
trigger: TRIGGER
category: transactional
start: hello
steps:
  hello: {type: send, channel: app_push, message: {text: "hi {{ customer_id }}"}, next: done}
  done: {type: exit}
"""


def _journey(name: str, trigger: str) -> Any:
    return read_journey_text(JOURNEY.replace("NAME", name).replace("TRIGGER", trigger), name)


def _runs(engine: sa.Engine, journey: str) -> list[Any]:
    with engine.connect() as connection:
        query = sa.select(JOURNEY_RUNS).where(JOURNEY_RUNS.c.journey == journey)
        return list(connection.execute(query))


def _table(segment_store: SegmentStore, name: str) -> list[dict[str, Any]]:
    snapshot = Warehouse(segment_store.warehouse).snapshot()
    rows: list[dict[str, Any]] = pq.read_table(snapshot.paths(name)).to_pylist()
    return rows


class Setup:
    def __init__(self, segment_store: SegmentStore, home: Path, clock: datetime = CLOCK) -> None:
        self.store = segment_store
        self.settings = segment_store.settings(home, clock=clock)
        self.service = JourneyService.migrated(self.settings)
        self.engine = self.service.operational
        self.customers = WarehouseCustomers(self.settings, self.engine)
        self.runtime = JourneyRuntime(self.settings, self.engine, self.customers)

    def at(self, clock: datetime) -> Settings:
        return self.settings.model_copy(update={"clock": clock})


@pytest.fixture
def setup(segment_store: SegmentStore, tmp_path: Path) -> Iterator[Setup]:
    made = Setup(segment_store, tmp_path / "home")
    yield made
    made.customers.close()


def test_latest_tick_is_in_the_zone_and_only_after_the_cursor() -> None:
    monday_0930 = datetime(2026, 1, 5, 9, 30, tzinfo=SHANGHAI)
    thursday = datetime(2026, 1, 1, tzinfo=SHANGHAI)
    tick = latest_tick("0 9 * * 1", SHANGHAI, thursday, monday_0930)
    assert tick == datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    assert latest_tick("0 9 * * 1", SHANGHAI, tick, monday_0930) is None  # handled already
    exactly = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    assert latest_tick("0 9 * * 1", SHANGHAI, thursday, exactly) == exactly
    assert latest_tick("0 9 * * 1", SHANGHAI, thursday, exactly - timedelta(seconds=1)) is None
    # After a long stop only the latest missed tick: three Mondays later, one tick.
    later = datetime(2026, 1, 26, 12, 0, tzinfo=SHANGHAI)
    assert latest_tick("0 9 * * 1", SHANGHAI, thursday, later) == datetime(
        2026, 1, 26, 9, 0, tzinfo=SHANGHAI
    )


def test_a_schedule_enters_everyone_at_the_tick_of_their_own_time_zone(setup: Setup) -> None:
    setup.service.publish(_journey("weekly", "{type: schedule, cron: '0 9 * * 1'}"), actor="t")
    zones = {
        row["customer_id"]: row["timezone"] or "Asia/Shanghai"
        for row in _table(setup.store, "customers")
    }
    assert setup.runtime.read_scheduled(CLOCK) == 0  # Thursday: no Monday 09:00 yet
    # Monday 09:30 in Shanghai is 01:30 UTC: every UTC+8 zone has had its 09:00.
    monday = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)
    eastern = {
        c
        for c, z in zones.items()
        if datetime(2026, 1, 5, tzinfo=ZoneInfo(z)).utcoffset() == timedelta(hours=8)
    }
    assert setup.runtime.read_scheduled(monday) == len(eastern) > 0
    assert {run.customer_id for run in _runs(setup.engine, "weekly")} == eastern
    # London's 09:00 is 09:00 UTC; the eastern zones' tick is not taken again.
    evening = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert setup.runtime.read_scheduled(evening) == len(zones) - len(eastern)
    runs = _runs(setup.engine, "weekly")
    assert {run.customer_id for run in runs} == set(zones)
    for run in runs:
        local_nine = datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo(zones[run.customer_id]))
        assert run.occurrence == f"schedule:{local_nine.isoformat()}"
    assert setup.runtime.read_scheduled(evening + timedelta(minutes=5)) == 0


def test_a_schedule_on_a_segment_enters_its_members_only(setup: Setup) -> None:
    segments = SegmentService(setup.settings, setup.engine)
    segments.save("shanghai_buyers", "frequency_orders >= 2", user="t")
    with setup.engine.connect() as connection:
        members = {
            row.customer_id
            for row in connection.execute(
                sa.select(SEGMENT_CHANGES.c.customer_id).where(
                    SEGMENT_CHANGES.c.name == "shanghai_buyers"
                )
            )
        }
    document = "{type: schedule, cron: '0 8 * * *', segment: shanghai_buyers}"
    setup.service.publish(_journey("daily", document), actor="t")
    setup.runtime.read_scheduled(datetime(2026, 1, 2, 12, tzinfo=UTC))
    assert {run.customer_id for run in _runs(setup.engine, "daily")} == members
    assert 0 < len(members) < len(_table(setup.store, "customers"))


def test_stage_changes_enter_from_the_stored_transitions_once(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    published = datetime(2025, 12, 20, tzinfo=SHANGHAI)
    setup = Setup(segment_store, tmp_path / "home", clock=published)
    moves = _table(segment_store, STAGE_TRANSITIONS_TABLE)
    target = max(
        {m["to_stage"] for m in moves if m["to_stage"]},
        key=lambda s: sum(m["to_stage"] == s and m["day"] >= date(2025, 12, 20) for m in moves),
    )
    source = max(
        {m["from_stage"] for m in moves if m["to_stage"] == target and m["from_stage"]},
        key=lambda s: sum(m["from_stage"] == s and m["to_stage"] == target for m in moves),
    )
    setup.service.publish(_journey("into", f"{{type: stage_change, to: {target}}}"), actor="t")
    setup.service.publish(
        _journey("from-to", f"{{type: stage_change, from: {source}, to: {target}}}"), actor="t"
    )
    day_27 = datetime(2025, 12, 27, 12, tzinfo=SHANGHAI)
    setup.runtime.read_scheduled(day_27)

    def expected(first: date, last: date, *, from_stage: str | None = None) -> set[str]:
        return {
            m["customer_id"]
            for m in moves
            if m["to_stage"] == target
            and first <= m["day"] <= last
            and from_stage in (None, m["from_stage"])
        }

    week = expected(date(2025, 12, 20), date(2025, 12, 27))
    assert week, "the demo history has moves in that week"
    assert {run.customer_id for run in _runs(setup.engine, "into")} == week
    assert {run.customer_id for run in _runs(setup.engine, "from-to")} == expected(
        date(2025, 12, 20), date(2025, 12, 27), from_stage=source
    )
    # The days after: only their moves, and a customer already in (re-entry "never") not
    # again; moves before publishing never.
    setup.runtime.read_scheduled(day_27 + timedelta(days=4))
    rest = expected(date(2025, 12, 28), date(2025, 12, 31))
    into = {run.customer_id for run in _runs(setup.engine, "into")}
    assert into == week | rest
    assert not into & (expected(date(2025, 1, 1), date(2025, 12, 19)) - week - rest)
    setup.customers.close()


def test_inactivity_enters_when_the_silence_begins_not_for_the_already_silent(
    setup: Setup,
) -> None:
    trigger = "{type: inactivity, event: login, days: 30}"
    setup.service.publish(_journey("quiet", trigger), actor="t")
    name = trigger_segment_name("quiet")
    setup.runtime.read_segment_changes(CLOCK)
    assert _runs(setup.engine, "quiet") == []  # silent at publish: they did not just become so
    later = CLOCK + timedelta(days=10)
    SegmentService(setup.at(later), setup.engine).refresh_time_relative()
    setup.runtime.read_segment_changes(later)
    with setup.engine.connect() as connection:
        changes = connection.execute(
            sa.select(SEGMENT_CHANGES).where(SEGMENT_CHANGES.c.name == name)
        ).all()
    saved = {c.customer_id for c in changes if c.trigger == "save"}
    became = {c.customer_id for c in changes if c.trigger != "save" and c.change == "enter"}
    entered = {run.customer_id for run in _runs(setup.engine, "quiet")}
    assert entered == became and entered and not entered & saved
    logins: dict[str, datetime] = {}
    for event in _table(setup.store, "events"):
        if event["event_type"] == "login":
            at = event["ts"]
            logins[event["customer_id"]] = max(logins.get(event["customer_id"], at), at)
    for customer in entered:  # logged in once, last between 40 and 29 days before ``later``
        assert later - timedelta(days=41) < logins[customer] < later - timedelta(days=29)


def test_a_date_trigger_starts_on_the_day_at_its_local_time(setup: Setup) -> None:
    trigger = "{type: date, field: birthday, at: '10:00'}"
    setup.service.publish(_journey("birthday", trigger), actor="t")
    records = _table(setup.store, "customers")
    by_day: dict[tuple[int, int], set[str]] = {}
    for row in records:
        if row["birthday"] is not None:
            key = (row["birthday"].month, row["birthday"].day)
            by_day.setdefault(key, set()).add(row["customer_id"])
    day = next(
        date(2026, 1, 1) + timedelta(days=d)
        for d in range(1, 60)
        if (
            (date(2026, 1, 1) + timedelta(days=d)).month,
            (date(2026, 1, 1) + timedelta(days=d)).day,
        )
        in by_day
    )
    just_after_midnight = datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(
        minutes=10
    )
    SegmentService(setup.at(just_after_midnight), setup.engine).refresh_time_relative()
    setup.runtime.read_segment_changes(just_after_midnight)
    runs = _runs(setup.engine, "birthday")
    assert {run.customer_id for run in runs} == by_day[(day.month, day.day)]
    zones = {row["customer_id"]: row["timezone"] or "Asia/Shanghai" for row in records}
    for run in runs:
        zone = ZoneInfo(zones[run.customer_id])
        due = run.due_at if run.due_at.tzinfo else run.due_at.replace(tzinfo=UTC)
        assert due.astimezone(zone).time().isoformat() == "10:00:00"
        assert run.occurrence == f"date:birthday:{day.isoformat()}"


def test_conditions_and_refusals_at_publish(setup: Setup) -> None:
    assert trigger_condition(
        _journey("x", "{type: inactivity, event: login, days: 30}").trigger
    ) == ("did login and did not login in last 30 days")
    prediction = "{type: prediction, field: churn_probability, crosses: above, threshold: 0.6}"
    assert trigger_condition(_journey("x", prediction).trigger) == "churn_probability > 0.6"
    setup.service.publish(_journey("risk", prediction), actor="t")
    segment = SegmentService(setup.settings, setup.engine).get(trigger_segment_name("risk"))
    assert segment.expression == "churn_probability > 0.6"
    with pytest.raises(JourneyInvalid) as caught:
        setup.service.publish(
            _journey("late", "{type: date, field: birthday, offset_days: 3}"), actor="t"
        )
    assert [p.path for p in caught.value.problems] == ["trigger.offset_days"]
    with pytest.raises(JourneyInvalid) as caught:
        setup.service.publish(
            _journey("never", "{type: inactivity, event: logon, days: 30}"), actor="t"
        )
    assert "did you mean 'login'" in caught.value.problems[0].reason
    names = {journey.name for journey in setup.service.saved()}
    assert names == {"risk"}
