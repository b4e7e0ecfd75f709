"""``perennial tasks``: teams, the queue, one task, closing with an outcome, the SLA view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from perennial.access.audit import query_audit
from perennial.access.roles import Role
from perennial.access.users import create_user
from perennial.cli.app import app
from perennial.config import Settings
from perennial.errors import ExitCode, PerennialError
from perennial.ingest.inbox import INBOX_ITEMS
from perennial.store.operational import create_engine_for, migrate
from perennial.tasks.breaches import breach_alerts
from perennial.tasks.creation import NewTask, create_task

CLOCK = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    settings = Settings(home=tmp_path / "home")
    migrate(settings)
    engine = create_engine_for(settings)
    with engine.begin() as connection:
        for name in ("ann", "bob"):
            create_user(connection, username=name, roles=frozenset({Role.AGENT}), actor="t")
        create_user(connection, username="vic", roles=frozenset({Role.VIEWER}), actor="t")
    engine.dispose()
    return tmp_path / "home"


def _run(home: Path, *args: str) -> Result:
    env = {"PERENNIAL_HOME": str(home), "PERENNIAL_CLOCK": CLOCK.isoformat(), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def _exit_code(result: Result) -> int:
    if isinstance(result.exception, PerennialError):
        return int(result.exception.exit_code)
    return result.exit_code


def _task(home: Path, customer: str, due_in: timedelta) -> str:
    engine = create_engine_for(Settings(home=home))
    with engine.begin() as connection:
        new = NewTask(customer, f"回访 {customer}", "gold", "urgent", CLOCK + due_in)
        task_id = create_task(connection, new, now=CLOCK).task_id
    engine.dispose()
    return task_id


def test_team_add_list_and_remove(home: Path) -> None:
    assert _run(home, "tasks", "team", "add", "gold", "ann").exit_code == 0
    added = _run(home, "tasks", "team", "add", "gold", "bob")
    assert "bob is in team gold (position 2)" in added.output
    listed = _run(home, "tasks", "team", "list").output
    assert "gold" in listed and "ann, bob" in listed
    removed = _run(home, "tasks", "team", "remove", "gold", "ann")
    assert removed.exit_code == 0 and "ann left team gold" in removed.output
    assert "ann" not in _run(home, "tasks", "team", "list").output


def test_a_viewer_or_an_unknown_user_cannot_join(home: Path) -> None:
    for name in ("vic", "nobody"):
        result = _run(home, "tasks", "team", "add", "gold", name)
        assert _exit_code(result) == int(ExitCode.INVALID_INPUT), name
    assert "vic" not in _run(home, "tasks", "team", "list").output


def test_list_show_and_close(home: Path) -> None:
    _run(home, "tasks", "team", "add", "gold", "ann")
    late = _task(home, "C1", timedelta(hours=-1))
    later = _task(home, "C2", timedelta(hours=3))
    listed = _run(home, "tasks", "list").output
    assert listed.index(late) < listed.index(later)  # overdue first
    assert "overdue" in listed and "ann" in listed
    shown = _run(home, "tasks", "show", later).output
    assert "回访 C2" in shown and "2026-03-02 13:00" in shown  # due, Shanghai time
    refused = _run(home, "tasks", "close", later, "--outcome", "declined")
    assert _exit_code(refused) == int(ExitCode.INVALID_INPUT)
    closed = _run(home, "tasks", "close", later, "--outcome", "declined", "--notes", "太贵")
    assert closed.exit_code == 0 and f"task {later} closed: declined" in closed.output
    assert later not in _run(home, "tasks", "list").output
    assert later in _run(home, "tasks", "list", "--status", "closed").output
    engine = create_engine_for(Settings(home=home))
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(INBOX_ITEMS)).scalar() == 1
        [entry] = query_audit(connection, action="task.closed")
    engine.dispose()
    assert entry["actor"].startswith("cli")


def test_the_sla_view_lists_teams_and_breaches(home: Path) -> None:
    late = _task(home, "C1", timedelta(hours=-1))
    engine = create_engine_for(Settings(home=home))
    with engine.begin() as connection:
        breach_alerts(connection, CLOCK)
    engine.dispose()
    output = _run(home, "tasks", "sla").output
    assert "gold" in output and "100%" in output
    assert late in output


def test_an_unknown_status_is_a_usage_error(home: Path) -> None:
    assert _run(home, "tasks", "list", "--status", "done").exit_code == int(ExitCode.USAGE)
