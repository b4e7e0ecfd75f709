"""``perennial ingest``, ``quarantine`` and ``batches``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from perennial.cli.output import (
    console,
    print_ingest_reports,
    progress_bar,
    progress_callback,
)
from perennial.config import load_settings
from perennial.errors import ExitCode
from perennial.ingest.drain import drain_inbox
from perennial.ingest.inbox import InboxStatus, inbox_counts
from perennial.ingest.jobs import ingest_as_job
from perennial.ingest.mapping import load_mapping
from perennial.ingest.quarantine import list_quarantine
from perennial.ingest.report import IngestReport
from perennial.schema.tables import TABLES
from perennial.store.operational import create_engine_for, migrate
from perennial.store.summary import recent_batches

__all__ = ["batches_command", "drain_command", "ingest_command", "quarantine_command"]


def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or JSON Lines files.")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="Mapping file (YAML).")
    ] = None,
    table: Annotated[
        str | None,
        typer.Option("--table", "-t", help=f"Target table without a mapping: {', '.join(TABLES)}."),
    ] = None,
    fail_on_quarantine: Annotated[
        bool, typer.Option(help="Exit with code 10 when any row was quarantined.")
    ] = False,
) -> None:
    """Validate and load files; bad rows go to quarantine, re-sent rows are skipped.

    Each file is one atomic batch: it is stored whole or, on any failure, not at all.
    `perennial drain` moves track-API items waiting in the inbox into the store.
    """
    settings = load_settings()
    loaded = load_mapping(mapping) if mapping else None
    reports: list[IngestReport] = []
    with progress_bar() as bar:
        for path in files:
            task = bar.add_task(f"ingest {path.name}", total=None)
            reports.append(
                ingest_as_job(
                    path,
                    settings,
                    mapping=loaded,
                    table=table,
                    progress=progress_callback(bar, task),
                )
            )
            bar.remove_task(task)
    print_ingest_reports(reports)
    if fail_on_quarantine and any(r.quarantined for r in reports):
        raise typer.Exit(int(ExitCode.ROWS_QUARANTINED))


def quarantine_command(
    batch: Annotated[str | None, typer.Option(help="Only this batch id.")] = None,
    table: Annotated[str | None, typer.Option(help="Only rows meant for this table.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List quarantined rows: file, line, column, reason and the row as read."""
    rows = list_quarantine(load_settings(), batch_id=batch, table=table, limit=limit)
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
        return
    if not rows:
        console.print("The quarantine is empty.")
        return
    for row in rows:
        where = f"{row.source_file}, line {row.source_line}"
        if row.column_name:
            where += f", column {row.column_name}"
        console.print(
            f"[bold]{where}[/]  (batch {row.batch_id}, table {row.table_name})", highlight=False
        )
        console.print(f"  reason: {row.reason}", highlight=False, markup=False)
        console.print(f"  row:    {row.raw}", highlight=False, markup=False, soft_wrap=True)


def batches_command(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many batches.")] = 20,
) -> None:
    """List recent ingest batches with their counts."""
    batches = recent_batches(load_settings(), limit=limit)
    if not batches:
        console.print("No batches yet.")
        return
    view = Table(title="Ingest batches (newest first)")
    for name in batches[0]:
        view.add_column(name, overflow="fold")
    for batch in batches:
        view.add_row(*(str(v) for v in batch.values()))
    console.print(view)


def drain_command() -> None:
    """Move track-API items from the inbox into the store, for when no server drains them.

    Takes over requests a server claimed (one that died, say): safe even while a server
    runs, because the store admits one writer at a time and re-ingest is idempotent.
    """
    settings = load_settings()
    migrate(settings)
    engine = create_engine_for(settings)
    try:
        report = drain_inbox(
            settings, engine, max_items=settings.ingest_drain_items, take_over=True
        )
        with engine.connect() as connection:
            failed = inbox_counts(connection)[InboxStatus.FAILED]
    finally:
        engine.dispose()
    console.print(
        f"Drained {report.requests} requests ({report.items} items): "
        f"{report.accepted} rows stored, {report.quarantined} quarantined."
    )
    if failed:
        console.print(f"[yellow]{failed} requests failed to ingest three times and wait aside.[/]")
