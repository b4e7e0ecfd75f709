"""A migrated operational store per test, and factories for agents, teams and tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from perennial.access.roles import Role
from perennial.access.users import create_user, set_disabled
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate
from perennial.tasks.actors import TaskActor
from perennial.tasks.creation import NewTask, create_task
from perennial.tasks.records import Task
from perennial.tasks.teams import add_member, teams_of

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
"""Monday 2 March 2026, 10:00 in Shanghai."""
MANAGER = TaskActor(subject="user:boss", user_id=None, manager=True, teams=frozenset())
"""An operator acting through an API key (sees everything, holds nothing)."""


@dataclass
class Store:
    settings: Settings
    engine: sa.Engine

    def user(self, username: str, *roles: Role, disabled: bool = False) -> str:
        """A user with ``roles`` (agent by default); their id."""
        with self.engine.begin() as connection:
            user = create_user(
                connection, username=username, roles=frozenset(roles or {Role.AGENT}), actor="t"
            ).user
            if disabled:
                set_disabled(connection, user.user_id, True, actor="t")
        return user.user_id

    def team(self, team: str, *user_ids: str) -> None:
        with self.engine.begin() as connection:
            for user_id in user_ids:
                add_member(connection, team, user_id, actor="t", now=NOW)

    def task(
        self,
        customer: str = "C1",
        team: str | None = "gold",
        *,
        due_in: timedelta | None = timedelta(hours=24),
        priority: str = "normal",
        now: datetime = NOW,
        task_id: str | None = None,
    ) -> Task:
        new = NewTask(
            customer_id=customer,
            title=f"call {customer}",
            team=team,
            priority=priority,
            due_at=None if due_in is None else now + due_in,
            source="api:test",
            task_id=task_id,
        )
        with self.engine.begin() as connection:
            return create_task(connection, new, now=now)

    def agent(self, user_id: str, username: str = "agent") -> TaskActor:
        """The actor a signed-in agent is."""
        with self.engine.connect() as connection:
            teams = teams_of(connection, user_id)
        return TaskActor(f"user:{username}", user_id, manager=False, teams=teams)


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The migrated store of ``settings`` (its engine disposed afterwards)."""
    migrate(settings)
    engine = create_engine_for(settings)
    try:
        yield Store(settings, engine)
    finally:
        engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Settings(home=tmp_path / "home", clock=NOW)) as opened:
        yield opened
