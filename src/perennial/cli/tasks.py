"""``perennial tasks list|show|close|sla`` and ``perennial tasks team add|remove|list``.

The command line acts as a manager (it holds the store): it sees every task and closes
any active one. Team changes and closes are audited with the actor ``cli:<os user>``.
Times are shown in the configured time zone.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import typer
from rich.table import Table
from rich.text import Text

from perennial.access.users import UnknownUserError, find_user
from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.store.operational import create_engine_for, migrate
from perennial.tasks.actors import TaskActor
from perennial.tasks.assignment import next_in_rotation
from perennial.tasks.breaches import list_breaches
from perennial.tasks.outcomes import close_task
from perennial.tasks.queue import StatusFilter, TaskQuery, list_tasks
from perennial.tasks.records import Task, get_task
from perennial.tasks.sla import SLA_WINDOW_DAYS, team_sla
from perennial.tasks.teams import add_member, list_teams, remove_member

__all__ = [
    "close_command",
    "list_command",
    "show_command",
    "sla_command",
    "tasks_app",
    "team_add_command",
    "team_app",
    "team_list_command",
    "team_remove_command",
]

tasks_app = typer.Typer(
    help="Customer-service tasks: queues, outcomes, teams and SLA.", no_args_is_help=True
)
team_app = typer.Typer(help="Which agents take which team's tasks.", no_args_is_help=True)
tasks_app.add_typer(team_app, name="team")

TaskIdArgument = Annotated[str, typer.Argument(help="The task's id.")]
TeamArgument = Annotated[str, typer.Argument(help="Team name (as in journeys).")]
UsernameArgument = Annotated[str, typer.Argument(help="The agent's username.")]


def _actor() -> TaskActor:
    try:
        subject = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        subject = "cli"
    return TaskActor(subject=subject, user_id=None, manager=True, teams=frozenset())


@contextmanager
def _transaction(settings: Settings) -> Iterator[sa.Connection]:
    migrate(settings)
    engine = create_engine_for(settings)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _local(at: datetime | None, settings: Settings) -> str:
    if at is None:
        return "-"
    return f"{at.astimezone(ZoneInfo(settings.default_timezone)):%Y-%m-%d %H:%M}"


@tasks_app.command("list")
def list_command(
    status: Annotated[
        str,
        typer.Option(
            help="active (open and in progress), open, in_progress, closed, cancelled or all."
        ),
    ] = "active",
    team: Annotated[str | None, typer.Option(help="Only this team's tasks.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue tasks.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Tasks in working order: overdue first, then by due time and priority."""
    allowed = ("active", "open", "in_progress", "closed", "cancelled", "all")
    if status not in allowed:
        raise typer.BadParameter(f"choose one of {', '.join(allowed)}", param_hint="--status")
    settings = load_settings()
    now = settings.now()
    query = TaskQuery(
        status=cast(StatusFilter, status), team=team, overdue=True if overdue else None
    )
    with _transaction(settings) as connection:
        tasks = list_tasks(connection, _actor(), query, now=now, limit=limit)
    table = Table(title=f"Tasks ({status})")
    for column in ("task", "customer", "team", "priority", "status", "holder", "due", "title"):
        table.add_column(column)
    for task in tasks:
        due = _local(task.due_at, settings) + (" overdue" if task.overdue(now) else "")
        table.add_row(
            task.task_id,
            Text(task.customer_id),
            Text(task.team or "-"),
            task.priority or "-",
            task.status.value,
            Text(task.assignee_name or "-"),
            due,
            Text(task.title),
        )
    console.print(table)


@tasks_app.command("show")
def show_command(task_id: TaskIdArgument) -> None:
    """One task with its outcome and notes."""
    settings = load_settings()
    with _transaction(settings) as connection:
        task = get_task(connection, task_id)
    _print_task(task, settings)


@tasks_app.command("close")
def close_command(
    task_id: TaskIdArgument,
    outcome: Annotated[str, typer.Option(help="won_back, declined, unreachable or wrong_number.")],
    notes: Annotated[
        str | None, typer.Option(help="What happened (required for declined).")
    ] = None,
) -> None:
    """Close an active task with its outcome; emits the service_task_closed event."""
    settings = load_settings()
    with _transaction(settings) as connection:
        task = close_task(connection, _actor(), task_id, outcome, notes, now=settings.now())
    _say(f"task {task.task_id} closed: {task.outcome}")


@tasks_app.command("sla")
def sla_command(
    days: Annotated[int, typer.Option(min=1, max=366, help="The window.")] = SLA_WINDOW_DAYS,
) -> None:
    """Per team: open, overdue, closed and the breach rate; then the latest breaches."""
    settings = load_settings()
    now = settings.now()
    with _transaction(settings) as connection:
        rows = team_sla(connection, now, days=days)
        breaches = list_breaches(connection, limit=20)
    table = Table(title=f"SLA, last {days} days")
    for column in ("team", "open", "overdue", "closed", "due", "breached", "breach rate"):
        table.add_column(column)
    for row in rows:
        rate = "-" if row.breach_rate is None else f"{row.breach_rate:.0%}"
        cells = (row.open, row.overdue, row.closed, row.due, row.breached)
        table.add_row(Text(row.team or "(no team)"), *(str(cell) for cell in cells), rate)
    console.print(table)
    listed = Table(title="Latest SLA breaches")
    for column in ("recorded", "task", "team", "holder", "due", "status"):
        listed.add_column(column)
    for breach in breaches:
        task = breach.task
        listed.add_row(
            _local(breach.recorded_at, settings),
            task.task_id,
            Text(task.team or "-"),
            Text(task.assignee_name or "-"),
            _local(task.due_at, settings),
            task.status.value,
        )
    console.print(listed)


@team_app.command("add")
def team_add_command(team: TeamArgument, username: UsernameArgument) -> None:
    """Add an agent at the end of the team's rotation."""
    settings = load_settings()
    with _transaction(settings) as connection:
        member = add_member(
            connection,
            team,
            _user_id(connection, username),
            actor=_actor().subject,
            now=settings.now(),
        )
    _say(f"{username} is in team {team} (position {member.position})")


@team_app.command("remove")
def team_remove_command(team: TeamArgument, username: UsernameArgument) -> None:
    """Take an agent out of the team (the tasks they hold stay theirs)."""
    settings = load_settings()
    with _transaction(settings) as connection:
        remove_member(
            connection,
            team,
            _user_id(connection, username),
            actor=_actor().subject,
            now=settings.now(),
        )
    _say(f"{username} left team {team}")


@team_app.command("list")
def team_list_command() -> None:
    """Every team, its members in rotation order, and who gets the next task."""
    with _transaction(load_settings()) as connection:
        teams = list_teams(connection)
    table = Table(title="Teams")
    for column in ("team", "members (rotation order)", "next"):
        table.add_column(column)
    for team in teams:
        names = [
            member.username + ("" if member.available else " (unavailable)")
            for member in team.members
        ]
        following = next_in_rotation(list(team.members), team.last_position)
        table.add_row(
            Text(team.name),
            Text(", ".join(names) or "-"),
            Text("-" if following is None else following.username),
        )
    console.print(table)


def _user_id(connection: sa.Connection, username: str) -> str:
    user = find_user(connection, username)
    if user is None:
        raise UnknownUserError(f"no user named {username!r}")
    return user.user_id


def _print_task(task: Task, settings: Settings) -> None:
    now = settings.now()
    facts = {
        "task": task.task_id,
        "customer": task.customer_id,
        "title": task.title,
        "team": task.team or "-",
        "priority": task.priority or "-",
        "status": task.status.value + (" (overdue)" if task.overdue(now) else ""),
        "holder": task.assignee_name or "- (in the team's queue)",
        "created": _local(task.created_at, settings),
        "due": _local(task.due_at, settings),
        "source": task.source or "-",
        "outcome": task.outcome or "-",
        "notes": task.notes or "-",
        "closed": _local(task.closed_at, settings),
    }
    for label, value in facts.items():
        _say(f"{label:>9}: {value}")
