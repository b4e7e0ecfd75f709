"""``perennial journeys validate|publish|pause|resume|archive|list|steps|runs``.

``validate`` checks files alone: every problem of every file is printed with its
key path (``steps.coupon.next``) and, for expressions, the column; it exits with
the configuration code when any file has one, so it can guard a repository of
journeys in CI. ``publish`` also checks the names against the store and makes
the file's journey live as a new version (runs already started keep theirs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import load_settings
from perennial.errors import ExitCode
from perennial.journeys.document import Journey
from perennial.journeys.loading import JourneyInvalid, load_journey
from perennial.journeys.service import JourneyService
from perennial.journeys.worker import Worker, single_sqlite_worker
from perennial.store.operational import migrate

__all__ = [
    "archive_command",
    "journeys_app",
    "list_command",
    "pause_command",
    "publish_command",
    "resume_command",
    "runs_command",
    "steps_command",
    "validate_command",
    "worker_command",
]

_ACTOR = "cli"

journeys_app = typer.Typer(
    help="Journeys: triggers, waits, branches and actions, run durably.", no_args_is_help=True
)

Paths = Annotated[
    list[Path],
    typer.Argument(help="Journey files (YAML or JSON), or folders of them.", show_default=False),
]


@journeys_app.command("validate")
def validate_command(paths: Paths) -> None:
    """Check journey documents: schema, graph (reachable, no dangling edge, loops only
    through a wait, every path ends), conditions, filters, schedules and templates."""
    files = _journey_files(paths)
    if not files:
        console.print("[red]no journey files found[/] (looked for *.yaml, *.yml, *.json)")
        raise typer.Exit(int(ExitCode.USAGE))
    table = Table(title="Journeys")
    for column in ("file", "journey", "trigger", "steps", "result"):
        table.add_column(column)
    failures: list[JourneyInvalid] = []
    for file in files:
        try:
            journey = load_journey(file)
        except JourneyInvalid as error:
            failures.append(error)
            table.add_row(str(file), "", "", "", f"[red]{len(error.problems)} problem(s)[/]")
            continue
        table.add_row(
            str(file),
            journey.journey,
            _trigger_text(journey),
            str(len(journey.steps)),
            "[green]valid[/]",
        )
    console.print(table)
    for failure in failures:
        console.print(str(failure), markup=False, highlight=False)
    if failures:
        raise typer.Exit(int(ExitCode.CONFIG))


@journeys_app.command("publish")
def publish_command(
    target: Annotated[
        str,
        typer.Argument(help="A journey file, or the name of a saved journey (its newest version)."),
    ],
) -> None:
    """Check a journey against the store and make it live as a new version."""
    service = JourneyService.migrated(load_settings())
    path = Path(target)
    if path.exists():
        published = service.publish(load_journey(path), actor=_ACTOR, source=str(path))
    else:
        published = service.publish_saved(target, actor=_ACTOR)
    console.print(f"published {published.name} version {published.version}: {published.status}")


Name = Annotated[str, typer.Argument(help="The journey's name.")]


@journeys_app.command("pause")
def pause_command(name: Name) -> None:
    """Stop new entries and hold runs where they are until resumed."""
    _move(name, "pause")


@journeys_app.command("resume")
def resume_command(name: Name) -> None:
    """Let a paused journey take entries and move its runs again."""
    _move(name, "resume")


@journeys_app.command("archive")
def archive_command(name: Name) -> None:
    """Retire a journey for good (its history stays)."""
    _move(name, "archive")


@journeys_app.command("list")
def list_command(
    archived: Annotated[bool, typer.Option(help="Include archived journeys.")] = False,
) -> None:
    """Every journey with its status and versions."""
    table = Table(title="Journeys")
    for column in ("name", "title", "status", "live version", "latest version", "updated"):
        table.add_column(column)
    for journey in JourneyService.migrated(load_settings()).saved(archived=archived):
        table.add_row(
            journey.name,
            journey.title,
            journey.status,
            str(journey.live_version or "-"),
            str(journey.latest_version),
            f"{journey.updated_at:%Y-%m-%d %H:%M} by {journey.updated_by}",
        )
    console.print(table)


@journeys_app.command("steps")
def steps_command(name: Name) -> None:
    """Per-step counts: entered, waiting there now, sent, suppressed (by reason), failed,
    converted (the goal reached while at the step)."""
    counts = JourneyService.migrated(load_settings()).steps(name)
    table = Table(title=f"Journey {name}: steps")
    columns = ("step", "entered", "waiting", "sent", "suppressed", "failed", "converted")
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, count in counts.items():
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(count.suppressed_by.items()))
        suppressed = f"{count.suppressed:,}" + (f" ({reasons})" if reasons else "")
        table.add_row(
            step,
            f"{count.entered:,}",
            f"{count.waiting:,}",
            f"{count.sent:,}",
            suppressed,
            f"{count.failed:,}",
            f"{count.converted:,}",
        )
    console.print(table)


@journeys_app.command("runs")
def runs_command(
    name: Name,
    status: Annotated[
        str | None,
        typer.Option(help="Only runs in this status (active, waiting, completed, converted, ...)."),
    ] = None,
    after: Annotated[str | None, typer.Option(help="Runs after this run id (paging).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.", min=1, max=10_000)] = 50,
) -> None:
    """A journey's runs by run id: customer, version, status, step, variant, when due."""
    service = JourneyService.migrated(load_settings())
    service.get(name)  # an unknown journey is an error, not an empty table
    runs = service.runs(name, status=status, after=after, limit=limit)
    table = Table(title=f"Journey {name}: runs")
    for column in ("run", "customer", "version", "status", "step", "variant", "entered", "due"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.run_id,
            run.customer_id,
            str(run.version),
            run.status,
            run.step or "-",
            run.variant or "-",
            f"{run.entered_at:%Y-%m-%d %H:%M}",
            "-" if run.due_at is None else f"{run.due_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    if len(runs) == limit:
        console.print(f"more: --after {runs[-1].run_id}")


def _move(name: str, move: str) -> None:
    status = JourneyService.migrated(load_settings()).change_status(name, move, actor=_ACTOR)
    console.print(f"{name}: {status}")


def _journey_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                child for child in path.iterdir() if child.suffix in (".yaml", ".yml", ".json")
            )
        else:
            files.append(path)
    return files


def _trigger_text(journey: Journey) -> str:
    trigger = journey.trigger.model_dump(by_alias=True, exclude_none=True)
    kind = trigger.pop("type")
    details = ", ".join(f"{key}={value}" for key, value in trigger.items())
    return f"{kind} ({details})" if details else kind


def worker_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once a pass finds nothing to do.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds to sleep when idle.", min=0.01)] = 1.0,
    batch: Annotated[int, typer.Option(help="Runs or messages per transaction.", min=1)] = 500,
    owner: Annotated[str | None, typer.Option(help="Name in claims and logs.")] = None,
) -> None:
    """Run journeys: enrol from triggers, advance due runs, send through the guardrails.

    Any number of workers may run on PostgreSQL; on SQLite, one. Stop with Ctrl-C (or
    kill it: nothing is lost or sent twice; the next worker picks up where it was).
    """
    settings = load_settings()
    migrate(settings)
    with single_sqlite_worker(settings):
        worker = Worker(settings, owner=owner, batch=batch)
        console.print(
            f"worker {worker.owner}: channels {', '.join(sorted(worker.channels))}; "
            f"{'until idle' if until_idle else 'Ctrl-C stops'}"
        )
        try:
            totals = worker.run(until_idle=until_idle, poll=poll)
        except KeyboardInterrupt:
            totals = worker.totals
        finally:
            worker.close()
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(totals.outcomes.items())) or "nothing sent"
    console.print(
        f"worker {worker.owner}: {totals.passes} passes, {totals.signals} signals, "
        f"{totals.advanced} runs advanced; {outcomes}"
    )
