"""Overdue at the edges of the due time, and the per-team SLA view."""

from __future__ import annotations

from datetime import timedelta

from perennial.tasks.outcomes import close_task
from perennial.tasks.queue import TaskQuery, list_tasks
from perennial.tasks.records import get_task
from perennial.tasks.sla import team_sla
from perennial.tasks.transitions import cancel_task
from tests.tasks.conftest import MANAGER, NOW, Store

MICROSECOND = timedelta(microseconds=1)


def test_a_task_is_not_overdue_at_its_due_time_and_is_one_microsecond_later(
    store: Store,
) -> None:
    task = store.task(due_in=timedelta(hours=24))
    due = NOW + timedelta(hours=24)
    assert task.due_at == due
    assert not task.overdue(due - MICROSECOND)
    assert not task.overdue(due)
    assert task.overdue(due + MICROSECOND)


def test_the_queue_filter_agrees_with_the_task_at_the_edge(store: Store) -> None:
    task = store.task(due_in=timedelta(hours=1))
    due = NOW + timedelta(hours=1)
    with store.engine.connect() as connection:
        overdue = [
            [t.task_id for t in list_tasks(connection, MANAGER, TaskQuery(overdue=True), now=at)]
            for at in (due, due + MICROSECOND)
        ]
        on_time = list_tasks(connection, MANAGER, TaskQuery(overdue=False), now=due)
    assert overdue == [[], [task.task_id]]
    assert [t.task_id for t in on_time] == [task.task_id]


def test_closed_and_cancelled_tasks_are_never_overdue(store: Store) -> None:
    closed = store.task("C1", due_in=timedelta(hours=1))
    cancelled = store.task("C2", due_in=timedelta(hours=1))
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, closed.task_id, "unreachable", now=NOW)
        cancel_task(connection, MANAGER, cancelled.task_id, now=NOW)
        later = NOW + timedelta(days=3)
        assert not get_task(connection, closed.task_id).overdue(later)
        assert not get_task(connection, cancelled.task_id).overdue(later)
        assert (
            list_tasks(connection, MANAGER, TaskQuery(status="all", overdue=True), now=later) == []
        )


def test_the_sla_view_counts_open_overdue_closed_and_breaches_per_team(store: Store) -> None:
    """gold: one closed exactly at its due time (on time), one closed a second late
    (breached), one still open past due (breached, overdue), one cancelled (not counted),
    one due tomorrow (open); silver: nothing fell due; an old closed task is outside."""
    ann = store.user("ann")
    store.team("gold", ann)
    store.team("silver", store.user("bob"))
    on_time = store.task("C1", due_in=timedelta(hours=1))
    late = store.task("C2", due_in=timedelta(hours=1))
    store.task("C3", due_in=timedelta(hours=2))
    cancelled = store.task("C4", due_in=timedelta(hours=1))
    store.task("C5", due_in=timedelta(days=1))
    old = store.task("C6", due_in=timedelta(hours=1), now=NOW - timedelta(days=10))
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, on_time.task_id, "won_back", now=NOW + timedelta(hours=1))
        close_task(
            connection,
            MANAGER,
            late.task_id,
            "unreachable",
            now=NOW + timedelta(hours=1, seconds=1),
        )
        cancel_task(connection, MANAGER, cancelled.task_id, now=NOW)
        close_task(connection, MANAGER, old.task_id, "won_back", now=NOW - timedelta(days=9))
        rows = {row.team: row for row in team_sla(connection, NOW + timedelta(hours=3))}
    gold, silver = rows["gold"], rows["silver"]
    assert (gold.open, gold.overdue, gold.closed, gold.due, gold.breached) == (2, 1, 2, 3, 2)
    assert gold.breach_rate == 2 / 3
    assert (silver.open, silver.due, silver.breach_rate) == (0, 0, None)
    assert list(rows) == ["gold", "silver"]


def test_tasks_without_a_team_get_their_own_row_last(store: Store) -> None:
    store.task("C1", team="gold")
    store.task("C2", team=None)
    with store.engine.connect() as connection:
        teams = [row.team for row in team_sla(connection, NOW)]
    assert teams == ["gold", None]
