"""Round-robin among a team's available agents: in order, fair, skipping the disabled, safe
when several workers create tasks at once on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from perennial.access.roles import Role
from perennial.access.users import set_disabled
from perennial.config import Settings
from perennial.tasks.assignment import next_assignee
from perennial.tasks.creation import NewTask, create_task
from perennial.tasks.errors import TaskInputError
from perennial.tasks.teams import remove_member
from perennial.tasks.transitions import claim_task
from tests.tasks.conftest import NOW, Store, open_store


def test_seven_tasks_over_three_agents_go_a_b_c_a_b_c_a(store: Store) -> None:
    agents = [store.user(name) for name in ("ann", "bob", "cai")]
    store.team("gold", *agents)
    holders = [store.task(f"C{i}").assignee for i in range(7)]
    ann, bob, cai = agents
    assert holders == [ann, bob, cai, ann, bob, cai, ann]
    assert sorted(Counter(holders).values(), reverse=True) == [3, 2, 2]


def test_a_disabled_agent_is_skipped_and_takes_turns_again_once_enabled(store: Store) -> None:
    ann, bob, cai = (store.user(name) for name in ("ann", "bob", "cai"))
    store.team("gold", ann, bob, cai)
    with store.engine.begin() as connection:
        set_disabled(connection, bob, True, actor="t")
    assert [store.task(f"C{i}").assignee for i in range(4)] == [ann, cai, ann, cai]
    with store.engine.begin() as connection:
        set_disabled(connection, bob, False, actor="t")
    assert [store.task(f"D{i}").assignee for i in range(3)] == [ann, bob, cai]


def test_an_agent_who_lost_every_working_role_is_skipped(store: Store) -> None:
    ann = store.user("ann")
    bob = store.user("bob")
    store.team("gold", ann, bob)
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET roles = 'viewer' WHERE user_id = :u"), {"u": ann}
        )
    assert [store.task(f"C{i}").assignee for i in range(3)] == [bob, bob, bob]


def test_a_member_who_left_loses_the_turn_and_the_others_keep_their_order(store: Store) -> None:
    ann, bob, cai = (store.user(name) for name in ("ann", "bob", "cai"))
    store.team("gold", ann, bob, cai)
    assert store.task("C1").assignee == ann
    with store.engine.begin() as connection:
        remove_member(connection, "gold", bob, actor="t", now=NOW)
    assert [store.task(f"C{i}").assignee for i in range(2, 5)] == [cai, ann, cai]
    store.team("gold", bob)  # back, at the end of the rotation (a new position)
    assert [store.task(f"D{i}").assignee for i in range(3)] == [bob, ann, cai]


def test_a_team_with_no_agents_keeps_its_tasks_in_the_team_queue_until_claimed(
    store: Store,
) -> None:
    task = store.task("C1", team="silver")
    assert task.assignee is None and task.status == "open"
    dora = store.user("dora")
    store.team("silver", dora)
    claimed = None
    with store.engine.begin() as connection:
        claimed = claim_task(connection, store.agent(dora), task.task_id, now=NOW)
    assert (claimed.assignee, claimed.status) == (dora, "in_progress")
    assert store.task("C2", team="silver").assignee == dora  # the team has an agent now


def test_a_team_whose_only_agent_is_disabled_leaves_tasks_unassigned(store: Store) -> None:
    ann = store.user("ann", disabled=True)
    store.team("gold", ann)
    assert store.task("C1").assignee is None
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT last_position FROM task_teams")).scalar() is None


def test_a_task_without_a_team_is_unassigned(store: Store) -> None:
    store.team("gold", store.user("ann"))
    assert store.task("C1", team=None).assignee is None


def test_a_viewer_cannot_join_a_team(store: Store) -> None:
    viewer = store.user("vic", Role.VIEWER)
    with pytest.raises(TaskInputError, match="cannot hold tasks") as raised:
        store.team("gold", viewer)
    assert raised.value.field == "user_id"
    assert store.task("C1").assignee is None


def test_a_rolled_back_task_gives_the_turn_back(store: Store) -> None:
    ann, bob = store.user("ann"), store.user("bob")
    store.team("gold", ann, bob)
    with pytest.raises(RuntimeError), store.engine.begin() as connection:
        assert next_assignee(connection, "gold") == ann
        raise RuntimeError("crash before commit")
    assert store.task("C1").assignee == ann


@pytest.mark.integration
def test_workers_creating_tasks_at_once_on_postgresql_keep_the_rotation(
    tmp_path: Path, postgres_url: str
) -> None:
    """Six threads create 30 tasks for one team at once; each holds its transaction open a
    moment after choosing, so without the team lock two would pick the same agent."""
    url = _fresh_database(postgres_url, "task_rotation")
    with open_store(Settings(home=tmp_path / "home", operational_url=url)) as store:
        agents = [store.user(name) for name in ("ann", "bob", "cai")]
        store.team("gold", *agents)
        errors = _create_at_once(store, workers=6, tasks_each=5)
        assert errors == []
        with store.engine.connect() as connection:
            holders = connection.execute(sa.text("SELECT assignee FROM service_tasks")).scalars()
            counts = Counter(holders)
    assert sorted(counts.values()) == [10, 10, 10]
    assert set(counts) == set(agents)


def _create_at_once(store: Store, *, workers: int, tasks_each: int) -> list[BaseException]:
    """Threads that start together, each creating tasks in its own transactions and holding
    each a moment after choosing (a racing worker without the team lock reads stale)."""
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def create(worker: int) -> None:
        try:
            start.wait()
            for number in range(tasks_each):
                with store.engine.begin() as connection:
                    new = NewTask(f"W{worker}-{number}", "call", "gold", due_at=NOW)
                    create_task(connection, new, now=NOW)
                    time.sleep(0.02)
        except BaseException as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _fresh_database(server_url: str, name: str) -> str:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
