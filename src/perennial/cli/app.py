"""Entry point: ``perennial --help`` lists every command."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from perennial.cli import (
    access,
    demo,
    identity,
    ingest,
    journeys,
    lifecycle,
    models,
    predict,
    segments,
    serve,
    serving,
    store,
    tasks,
)
from perennial.errors import ExitCode, PerennialError

__all__ = ["app", "main"]

app = typer.Typer(
    name="perennial",
    help="Customer lifecycle management: ingest customer data, compute where every customer "
    "stands, act on it and measure it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("ingest")(ingest.ingest_command)
app.command("quarantine")(ingest.quarantine_command)
app.command("batches")(ingest.batches_command)
app.command("drain")(ingest.drain_command)
app.command("init")(store.init_command)
app.add_typer(store.store_app, name="store")
app.add_typer(demo.demo_app, name="demo")
app.add_typer(identity.identity_app, name="identity")
app.command("features")(lifecycle.features_command)
app.command("profile")(lifecycle.profile_command)
app.add_typer(lifecycle.lifecycle_app, name="lifecycle")
app.add_typer(models.models_app, name="models")
app.command("predict")(predict.predict_command)
app.add_typer(segments.segments_app, name="segments")
app.add_typer(segments.tags_app, name="tags")
app.add_typer(journeys.journeys_app, name="journeys")
app.command("worker")(journeys.worker_command)
app.add_typer(tasks.tasks_app, name="tasks")
app.command("serve")(serve.serve_command)
app.add_typer(serving.serving_app, name="serving")
app.add_typer(access.users_app, name="users")
app.add_typer(access.apikeys_app, name="apikeys")

_errors = Console(stderr=True)


def main() -> None:
    """Run the CLI; expected errors print one clear message and exit with their code."""
    try:
        app()
    except PerennialError as error:
        _errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        sys.exit(int(error.exit_code))
    except KeyboardInterrupt:
        _errors.print("interrupted; nothing of the unfinished batch was stored")
        sys.exit(int(ExitCode.FAILURE))
