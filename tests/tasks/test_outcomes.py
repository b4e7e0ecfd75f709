"""Closing with an outcome: the task, the event in the same transaction, and what the event
does once drained (segments match it, journeys waiting for it move on). Refusals change
nothing."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from perennial.ingest.drain import drain_inbox
from perennial.ingest.event_feed import EVENT_FEED
from perennial.ingest.inbox import INBOX_ITEMS, INBOX_REQUESTS
from perennial.segments.service import SegmentService
from perennial.segments.tag_store import tags_of
from perennial.tasks.errors import (
    TaskAccessError,
    TaskConflictError,
    TaskError,
    TaskInputError,
    UnknownTaskError,
)
from perennial.tasks.outcomes import CLOSED_EVENT, close_task
from perennial.tasks.records import get_task
from perennial.tasks.teams import add_member
from perennial.tasks.transitions import cancel_task
from tests.api.hostile import snapshot
from tests.journeys.runtime_harness import START, harness, profile
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, SegmentStore
from tests.tasks.conftest import MANAGER, NOW, Store, open_store

segment_store = segments_conftest.segment_store


def test_closing_records_the_outcome_and_appends_the_event_in_one_go(store: Store) -> None:
    ann = store.user("ann")
    store.team("gold", ann)
    task = store.task("C1", due_in=timedelta(hours=1))
    at = NOW + timedelta(minutes=30)
    with store.engine.begin() as connection:
        closed = close_task(
            connection, store.agent(ann), task.task_id, "declined", "  moved abroad ", now=at
        )
    assert (closed.status, closed.outcome, closed.notes) == ("closed", "declined", "moved abroad")
    assert (closed.closed_at, closed.assignee) == (at, ann)
    with store.engine.connect() as connection:
        [request] = connection.execute(sa.select(INBOX_REQUESTS)).all()
        [item] = connection.execute(sa.select(INBOX_ITEMS)).all()
    assert (request.principal, request.idempotency_key) == ("tasks", f"{task.task_id}:closed")
    assert item.table_name == "events"
    assert orjson.loads(item.record) == {
        "event_id": f"task-{task.task_id}-closed",
        "customer_id": "C1",
        "event_type": CLOSED_EVENT,
        "ts": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "properties": {
            "task_id": task.task_id,
            "outcome": "declined",
            "team": "gold",
            "priority": "normal",
            "source": "api:test",
            "on_time": True,
        },
    }


def test_a_late_close_says_so_in_the_event(store: Store) -> None:
    task = store.task("C1", due_in=timedelta(hours=1))
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, task.task_id, "won_back", now=NOW + timedelta(hours=2))
    with store.engine.connect() as connection:
        record = orjson.loads(connection.execute(sa.select(INBOX_ITEMS.c.record)).scalar_one())
    assert record["properties"]["on_time"] is False


@pytest.mark.parametrize(
    ("outcome", "notes", "error", "field"),
    [
        ("called", None, TaskInputError, "outcome"),
        ("declined", None, TaskInputError, "notes"),
        ("declined", "   ", TaskInputError, "notes"),
        ("won_back", "x" * 2001, TaskInputError, "notes"),
    ],
)
def test_an_unacceptable_outcome_or_notes_change_nothing(
    store: Store, outcome: str, notes: str | None, error: type[TaskError], field: str
) -> None:
    task = store.task()
    before = snapshot(store.engine)
    with pytest.raises(error) as raised, store.engine.begin() as connection:
        close_task(connection, MANAGER, task.task_id, outcome, notes, now=NOW)
    assert isinstance(raised.value, TaskInputError) and raised.value.field == field
    assert snapshot(store.engine) == before


def test_closing_twice_or_after_a_cancel_is_a_conflict_that_changes_nothing(
    store: Store,
) -> None:
    closed, cancelled = store.task("C1"), store.task("C2")
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, closed.task_id, "won_back", now=NOW)
        cancel_task(connection, MANAGER, cancelled.task_id, now=NOW)
    before = snapshot(store.engine)
    for task_id, state in ((closed.task_id, "closed"), (cancelled.task_id, "cancelled")):
        with pytest.raises(TaskConflictError, match=f"is {state}"), store.engine.begin() as c:
            close_task(c, MANAGER, task_id, "unreachable", now=NOW)
    with pytest.raises(UnknownTaskError), store.engine.begin() as connection:
        close_task(connection, MANAGER, "nope", "unreachable", now=NOW)
    assert snapshot(store.engine) == before


def test_an_agent_closes_only_their_own_or_their_teams_unassigned_tasks(store: Store) -> None:
    ann, bob, eve = store.user("ann"), store.user("bob"), store.user("eve")
    store.team("gold", ann, bob)
    store.team("blue", eve)
    anns = store.task("C1")
    unassigned = store.task("C2", team="silver")  # no agents: stays in the team queue
    with store.engine.begin() as connection:
        add_member(connection, "silver", bob, actor="t", now=NOW)
    before = snapshot(store.engine)
    with pytest.raises(TaskAccessError, match="held by ann"), store.engine.begin() as c:
        close_task(c, store.agent(bob, "bob"), anns.task_id, "won_back", now=NOW)
    with pytest.raises(TaskAccessError, match="not in your queue"), store.engine.begin() as c:
        close_task(c, store.agent(eve, "eve"), anns.task_id, "won_back", now=NOW)
    assert snapshot(store.engine) == before
    with store.engine.begin() as connection:
        taken = close_task(
            connection, store.agent(bob, "bob"), unassigned.task_id, "wrong_number", now=NOW
        )
    assert (taken.assignee, taken.assignee_name) == (bob, "bob")


def test_after_the_drain_a_segment_of_won_back_customers_matches_the_customer(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    shutil.copytree(segment_store.warehouse, warehouse, ignore=shutil.ignore_patterns("_*"))
    shutil.copytree(segment_store.warehouse / "_manifests", warehouse / "_manifests")
    settings = segment_store.settings(tmp_path / "home", warehouse_path=warehouse)
    at = CLOCK - timedelta(hours=1)
    with open_store(settings) as store:
        won = store.task("C0000001", now=at - timedelta(hours=2))
        declined = store.task("C0000002", now=at - timedelta(hours=2))
        with store.engine.begin() as connection:
            close_task(connection, MANAGER, won.task_id, "won_back", now=at)
            close_task(connection, MANAGER, declined.task_id, "declined", "too dear", now=at)
        report = drain_inbox(settings, store.engine)
        assert report.requests == 2
        assert drain_inbox(settings, store.engine).requests == 0
        segments = SegmentService(settings, store.engine)
        matched = segments.preview("did service_task_closed where outcome == 'won_back'")
        both = segments.preview("did service_task_closed in last 1 days")
        with store.engine.connect() as connection:
            feed = connection.execute(
                sa.select(EVENT_FEED.c.customer_id).where(EVENT_FEED.c.event_type == CLOSED_EVENT)
            ).scalars()
            fed = sorted(feed)
    assert (matched.count, matched.sample) == (1, ["C0000001"])
    assert sorted(both.sample) == ["C0000001", "C0000002"]
    assert fed == ["C0000001", "C0000002"]


CALL_BACK = """
journey: call-back
trigger: {type: manual}
start: call
steps:
  call:
    {type: task, team: gold, title: "Call {{ customer_id }}", priority: urgent, due_in: 24h,
     next: wait}
  wait:
    type: wait_for_event
    event: service_task_closed
    where: "outcome == 'won_back'"
    timeout: 7d
    on_event: won
    on_timeout: done
  won: {type: tag, add: won_back, next: done}
  done: {type: exit}
"""


def test_a_journey_assigns_its_task_round_robin_and_moves_on_when_it_is_won_back(
    tmp_path: Path,
) -> None:
    table = {customer: profile(customer) for customer in ("C1", "C2", "C3")}
    with harness(tmp_path, table) as h:
        store = Store(h.settings, h.engine)
        ann, bob = store.user("ann"), store.user("bob")
        store.team("gold", ann, bob)
        name = h.publish(CALL_BACK)
        h.enroll(name, ["C1", "C2", "C3"])
        h.tick(START)
        with h.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT task_id, customer_id, assignee FROM service_tasks")
            ).all()
        holders = {row.customer_id: row.assignee for row in rows}
        assert sorted(holders.values()) == sorted([ann, bob, ann])
        assert len(set(holders.values())) == 2
        tasks = {row.customer_id: row.task_id for row in rows}
        later = START + timedelta(hours=3)
        with h.engine.begin() as connection:
            task = get_task(connection, tasks["C1"])
            agent = store.agent(task.assignee or "")
            close_task(connection, agent, tasks["C1"], "won_back", now=later)
            close_task(connection, MANAGER, tasks["C2"], "declined", "no interest", now=later)
        drain_inbox(h.settings, h.engine)
        h.tick(later + timedelta(minutes=1))
        runs = h.runs(name)
        assert runs["C1"].status == "completed"
        with h.engine.connect() as connection:
            assert [tag.tag for tag in tags_of(connection, "C1")] == ["won_back"]
        assert (runs["C2"].status, runs["C3"].status) == ("waiting", "waiting")
        assert [row.customer_id for row in h.log("task")] == ["C1", "C2", "C3"]
