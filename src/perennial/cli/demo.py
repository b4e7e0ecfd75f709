"""``perennial demo generate|run``: synthetic customers with known ground truth."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from perennial.cli.access import create_first_admin, print_first_admin
from perennial.cli.lifecycle import (
    compute_and_store_profiles,
    print_lifecycle_report,
    run_backfill,
)
from perennial.cli.output import (
    console,
    print_ingest_reports,
    progress_bar,
    progress_callback,
)
from perennial.cli.predict import predict_and_store, train_first_churn_model
from perennial.cli.serve import serve
from perennial.cli.serving import refresh_and_report
from perennial.config import Settings, load_settings
from perennial.demo import DemoDataset, generate_demo
from perennial.errors import PerennialError
from perennial.ingest.jobs import ingest_as_job
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import as_of_instant
from perennial.lifecycle.stage_model import load_stage_model
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.service import SegmentService
from perennial.store.summary import store_summary

__all__ = [
    "demo_app",
    "load_demo_segments",
]

demo_app = typer.Typer(help="Demo data with ground truth.", no_args_is_help=True)

DEMO_STAGE_MODEL = "seed000"
"""The seed 000 five-stage model (引入期 ... 流失期): the demo's lifecycle."""

Customers = Annotated[int, typer.Option(min=1, help="Number of customers.")]
Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")]
Out = Annotated[Path, typer.Option(help="Folder for the generated files.")]


def _generate(bar: Progress, out: Path, customers: int, seed: int) -> DemoDataset:
    task = bar.add_task("generate", total=None)
    dataset = generate_demo(
        out,
        customers=customers,
        seed=seed,
        progress=lambda stage: bar.update(task, description=stage),
    )
    bar.remove_task(task)
    return dataset


@demo_app.command("generate")
def _generate_command(
    customers: Customers = 50_000, seed: Seed = 7, out: Out = Path("demo-data")
) -> None:
    """Write demo source files (CSV, Parquet, JSON Lines) and a ground-truth file."""
    with progress_bar() as bar:
        dataset = _generate(bar, out, customers, seed)
    for demo_file in dataset.files:
        console.print(f"{demo_file.table:12} {demo_file.rows:>12,}  {demo_file.path}")
    console.print(f"ground truth: {dataset.ground_truth}")
    console.print(f"deliberately invalid rows: {dataset.dirty_rows:,}")


HistoryDays = Annotated[
    int,
    typer.Option(min=0, help="Days of daily stage history to build up to the demo's last day."),
]


Serve = Annotated[
    bool,
    typer.Option(
        "--serve/--no-serve",
        help="Finally serve the dashboard and API on api_host:api_port until Ctrl-C.",
    ),
]


@demo_app.command("run")
def _run_command(
    customers: Customers = 50_000,
    seed: Seed = 7,
    out: Out = Path("demo-data"),
    history_days: HistoryDays = 90,
    serve_after: Serve = False,
) -> None:
    """Generate demo data, ingest it, compute profiles and stage history, print the report.

    Every step goes through the real path: file ingest with validation and identity
    merge, features, RFM, value tiers and the seed000 stage model as of the end of
    the demo period, and the daily stage history of its last ``--history-days``.
    With ``--serve`` (what ``make demo`` does) it then serves the dashboard and prints
    its address and, the first time, the generated admin's credentials.
    """
    settings = load_settings()
    with progress_bar() as bar:
        dataset = _generate(bar, out, customers, seed)
        reports = []
        for demo_file in dataset.files:
            task = bar.add_task(f"ingest {demo_file.path.name}", total=demo_file.rows)
            reports.append(
                ingest_as_job(
                    demo_file.path,
                    settings,
                    table=demo_file.table,
                    progress=progress_callback(bar, task),
                )
            )
            bar.remove_task(task)
    print_ingest_reports(reports)
    summary = store_summary(settings)
    revenue = ", ".join(f"{amount:,.2f} {currency}" for currency, amount in summary.revenue.items())
    console.print(
        f"[bold]customers[/] {summary.customers:,}   [bold]orders[/] {summary.orders:,}   "
        f"[bold]events[/] {summary.events:,}   [bold]revenue[/] {revenue or '0'}   "
        f"[bold]quarantined rows[/] {summary.quarantined:,}   "
        f"(deliberately invalid in the demo files: {dataset.dirty_rows:,})"
    )
    console.print(f"store: {settings.warehouse.resolve()} (version {summary.version})")
    settings = _run_lifecycle(settings, dataset.end, history_days)
    if serve_after:
        _serve_dashboard(settings)


def _serve_dashboard(settings: Settings) -> None:
    """Print where to sign in and with what, then serve until Ctrl-C."""
    created = create_first_admin(settings)
    url = f"http://{settings.api_host}:{settings.api_port}/"
    console.rule("dashboard")
    console.print(f"open [bold]{url}[/] in a browser (API documentation: {url}docs)")
    if created is not None:
        print_first_admin(created)
    else:
        console.print(
            "users exist already; `perennial users reset-password admin` prints a new "
            "password for the admin"
        )
    serve(settings, log_level="warning")


def _run_lifecycle(settings: Settings, end: date, history_days: int) -> Settings:
    """Profiles as of the end of the demo period, the stage history before it, a first
    churn model (trained and promoted) and every customer's predictions."""
    stage_model = load_stage_model(resolve_model_path(DEMO_STAGE_MODEL))
    compute_and_store_profiles(settings, stage_model, end.isoformat(), refresh=False)
    if history_days > 0:
        run_backfill(settings, stage_model, end - timedelta(days=history_days - 1), end)
        print_lifecycle_report(settings, stage_model, end)
    train_first_churn_model(settings)
    predict_and_store(settings, None)
    refresh_and_report(settings, stage_model)
    return load_demo_segments(settings, end)


def load_demo_segments(settings: Settings, end: date) -> Settings:
    """The shipped segment presets and computed tags, with the clock pinned to the end of
    the demo period (its data stops there); returns the pinned settings, which the server
    ``--serve`` starts is given (never the process environment: a caller in the same
    process, a test for one, would inherit the pinned clock)."""
    if settings.clock is None:
        clock = as_of_instant(end.isoformat(), settings.default_timezone)
        settings = settings.model_copy(update={"clock": clock})
    service = SegmentService.migrated(settings)
    specs = load_segment_document(PRESETS_FILE).segments
    try:
        results = service.save_many(specs, user="demo")
    except PerennialError:
        # A small demo may lack an event type a preset reads: save the others, say which not.
        results = []
        for spec in specs:
            try:
                results.extend(service.save_many([spec], user="demo"))
            except PerennialError as error:
                reason = str(error).splitlines()[0]
                console.print(f"[yellow]preset {spec.name} skipped:[/] {reason}", highlight=False)
    tags = service.refresh_tags(user="demo")
    console.rule("segments")
    for result in results:
        console.print(f"{result.name:26} {result.members:>9,} members", highlight=False)
    console.print(
        f"tags: {', '.join(f'{t.name} ({t.tagged:,})' for t in tags)}; "
        f"clock pinned to {settings.clock.isoformat() if settings.clock else 'now'}",
        highlight=False,
    )
    return settings
