"""Queues: what each actor sees, in working order (overdue, due time, priority), paged."""

from __future__ import annotations

from datetime import timedelta

from perennial.tasks.outcomes import close_task
from perennial.tasks.queue import TaskQuery, list_tasks, queue_key
from tests.tasks.conftest import MANAGER, NOW, Store


def test_overdue_first_then_due_time_then_priority_then_no_due_time(store: Store) -> None:
    later_low = store.task("C1", due_in=timedelta(hours=5), priority="low")
    later_urgent = store.task("C2", due_in=timedelta(hours=5), priority="urgent")
    overdue = store.task("C3", due_in=timedelta(hours=1), now=NOW - timedelta(hours=2))
    soon = store.task("C4", due_in=timedelta(hours=1), priority="low")
    undated = store.task("C5", due_in=None, priority="urgent")
    with store.engine.connect() as connection:
        queue = list_tasks(connection, MANAGER, TaskQuery(), now=NOW)
    assert [t.customer_id for t in queue] == ["C3", "C4", "C2", "C1", "C5"]
    assert [t.overdue(NOW) for t in queue] == [True, False, False, False, False]
    assert {
        later_low.task_id,
        later_urgent.task_id,
        overdue.task_id,
        soon.task_id,
        undated.task_id,
    } == {t.task_id for t in queue}


def test_pages_continue_after_the_last_key_without_gaps_or_repeats(store: Store) -> None:
    for number in range(7):
        store.task(f"C{number}", due_in=timedelta(hours=number % 3 + 1), priority="normal")
    store.task("CX", due_in=None)
    with store.engine.connect() as connection:
        whole = list_tasks(connection, MANAGER, TaskQuery(), now=NOW, limit=100)
        paged, after = [], None
        while True:
            page = list_tasks(connection, MANAGER, TaskQuery(), now=NOW, after=after, limit=3)
            if not page:
                break
            paged += page
            after = queue_key(page[-1])
    assert [t.task_id for t in paged] == [t.task_id for t in whole]
    assert len(whole) == 8


def test_an_agent_sees_their_own_and_their_teams_tasks_only(store: Store) -> None:
    ann, bob, eve = store.user("ann"), store.user("bob"), store.user("eve")
    store.team("gold", ann, bob)
    store.team("blue", eve)
    gold = [store.task(f"G{i}") for i in range(2)]  # ann, bob
    store.task("B1", team="blue")  # eve
    silver = store.task("S1", team="silver")  # nobody's team
    with store.engine.connect() as connection:
        seen = list_tasks(connection, store.agent(ann), TaskQuery(), now=NOW)
        mine = list_tasks(connection, store.agent(ann), TaskQuery(mine=True), now=NOW)
        for_silver = list_tasks(connection, MANAGER, TaskQuery(team="silver"), now=NOW)
    assert sorted(t.customer_id for t in seen) == ["G0", "G1"]
    assert [t.task_id for t in mine] == [gold[0].task_id]
    assert [t.task_id for t in for_silver] == [silver.task_id]


def test_an_api_key_with_the_agent_role_has_no_queue(store: Store) -> None:
    from perennial.tasks.actors import TaskActor

    store.task()
    key = TaskActor("key:abc", None, manager=False, teams=frozenset())
    with store.engine.connect() as connection:
        assert list_tasks(connection, key, TaskQuery(), now=NOW) == []
        assert list_tasks(connection, MANAGER, TaskQuery(mine=True), now=NOW) == []


def test_status_filters(store: Store) -> None:
    done, waiting = store.task("C1"), store.task("C2")
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, done.task_id, "won_back", now=NOW)
    with store.engine.connect() as connection:

        def ids(status: str) -> list[str]:
            query = TaskQuery(status=status)  # type: ignore[arg-type]
            return [t.task_id for t in list_tasks(connection, MANAGER, query, now=NOW)]

        assert ids("active") == ids("open") == [waiting.task_id]
        assert ids("closed") == [done.task_id]
        assert sorted(ids("all")) == sorted([done.task_id, waiting.task_id])
        assert ids("cancelled") == ids("in_progress") == []
