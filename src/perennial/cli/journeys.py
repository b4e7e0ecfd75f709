"""``perennial journeys validate``: check journey files before they are published.

Every problem of every file is printed with its key path (``steps.coupon.next``)
and, for expressions, the column; the command exits with the configuration code
when any file has one, so it can guard a repository of journeys in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.errors import ExitCode
from perennial.journeys.document import Journey
from perennial.journeys.loading import JourneyInvalid, load_journey

__all__ = ["journeys_app", "validate_command"]

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
