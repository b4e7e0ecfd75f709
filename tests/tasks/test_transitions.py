"""Claim, assign and cancel: who may, from which state, and what a race gives."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from perennial.access.audit import query_audit
from perennial.access.roles import Role
from perennial.tasks.actors import TaskActor
from perennial.tasks.errors import TaskAccessError, TaskConflictError, TaskInputError
from perennial.tasks.records import TaskStatus, get_task
from perennial.tasks.transitions import (
    assign_task,
    cancel_task,
    claim_task,
    compare_and_set,
    visible_task,
)
from tests.api.hostile import snapshot
from tests.tasks.conftest import MANAGER, NOW, Store


def test_an_agent_claims_their_own_task_and_it_is_in_progress(store: Store) -> None:
    ann = store.user("ann")
    store.team("gold", ann)
    task = store.task()
    with store.engine.begin() as connection:
        claimed = claim_task(connection, store.agent(ann, "ann"), task.task_id, now=NOW)
    assert (claimed.status, claimed.assignee, claimed.assignee_name) == (
        "in_progress",
        ann,
        "ann",
    )
    with store.engine.connect() as connection:
        [entry] = query_audit(connection, action="task.claimed")
    assert (entry["actor"], entry["subject_id"]) == ("user:ann", task.task_id)


def test_a_colleagues_task_is_visible_but_not_claimable(store: Store) -> None:
    ann, bob = store.user("ann"), store.user("bob")
    store.team("gold", ann, bob)
    anns = store.task()
    with store.engine.begin() as connection:
        assert visible_task(connection, store.agent(bob), anns.task_id) == anns
    before = snapshot(store.engine)
    with pytest.raises(TaskConflictError, match="held by ann"), store.engine.begin() as c:
        claim_task(c, store.agent(bob), anns.task_id, now=NOW)
    assert snapshot(store.engine) == before


def test_an_agent_of_another_team_cannot_see_the_task(store: Store) -> None:
    store.team("gold", store.user("ann"))
    eve = store.user("eve")
    store.team("blue", eve)
    task = store.task()
    with pytest.raises(TaskAccessError, match=r"not in your queue nor your team's \(blue\)"):
        with store.engine.connect() as connection:
            visible_task(connection, store.agent(eve), task.task_id)


def test_an_api_key_cannot_hold_a_task(store: Store) -> None:
    task = store.task(team="silver")
    with pytest.raises(TaskAccessError, match="acts for no person"), store.engine.begin() as c:
        claim_task(c, MANAGER, task.task_id, now=NOW)
    agent_key = TaskActor("key:abc", None, manager=False, teams=frozenset())
    with pytest.raises(TaskAccessError), store.engine.begin() as connection:
        claim_task(connection, agent_key, task.task_id, now=NOW)


def test_a_manager_assigns_reassigns_and_sends_back_to_the_team_queue(store: Store) -> None:
    ann, bob = store.user("ann"), store.user("bob")
    store.team("gold", ann, bob)
    task = store.task()
    with store.engine.begin() as connection:
        claim_task(connection, store.agent(ann), task.task_id, now=NOW)
        moved = assign_task(connection, MANAGER, task.task_id, "bob", now=NOW)
        assert (moved.assignee, moved.status) == (bob, TaskStatus.OPEN)
        back = assign_task(connection, MANAGER, task.task_id, None, now=NOW)
        assert (back.assignee, back.status) == (None, TaskStatus.OPEN)


@pytest.mark.parametrize(
    ("username", "message"),
    [("nobody", "no user named"), ("vic", "cannot hold tasks"), ("dan", "cannot hold tasks")],
)
def test_assigning_to_someone_who_cannot_hold_tasks_changes_nothing(
    store: Store, username: str, message: str
) -> None:
    store.user("vic", Role.VIEWER)
    store.user("dan", disabled=True)
    task = store.task()
    before = snapshot(store.engine)
    with pytest.raises(TaskInputError, match=message) as raised, store.engine.begin() as c:
        assign_task(c, MANAGER, task.task_id, username, now=NOW)
    assert raised.value.field == "assignee"
    assert snapshot(store.engine) == before


def test_only_managers_assign_and_cancel(store: Store) -> None:
    ann = store.user("ann")
    store.team("gold", ann)
    task = store.task()
    agent = store.agent(ann)
    with pytest.raises(TaskAccessError), store.engine.begin() as connection:
        assign_task(connection, agent, task.task_id, "ann", now=NOW)
    with pytest.raises(TaskAccessError), store.engine.begin() as connection:
        cancel_task(connection, agent, task.task_id, now=NOW)


def test_a_cancelled_task_is_final(store: Store) -> None:
    task = store.task()
    with store.engine.begin() as connection:
        cancelled = cancel_task(connection, MANAGER, task.task_id, now=NOW)
    assert (cancelled.status, cancelled.closed_at, cancelled.outcome) == ("cancelled", NOW, None)
    for change in (
        lambda c: cancel_task(c, MANAGER, task.task_id, now=NOW),
        lambda c: assign_task(c, MANAGER, task.task_id, None, now=NOW),
    ):
        with pytest.raises(TaskConflictError, match="is cancelled"), store.engine.begin() as c:
            change(c)


def test_a_change_based_on_a_stale_read_is_refused(store: Store) -> None:
    """Two agents read the same unassigned task; the first claim wins, the second's
    compare-and-set finds the holder changed."""
    ann, bob = store.user("ann"), store.user("bob")
    task = store.task(team="silver")
    store.team("silver", ann, bob)
    with store.engine.begin() as connection:
        stale = get_task(connection, task.task_id)
        claim_task(connection, store.agent(ann), task.task_id, now=NOW)
        with pytest.raises(TaskConflictError, match="changed while"):
            compare_and_set(connection, stale, assignee=bob)
        holder = connection.execute(
            sa.text("SELECT assignee FROM service_tasks WHERE task_id = :t"), {"t": task.task_id}
        ).scalar()
    assert holder == ann
