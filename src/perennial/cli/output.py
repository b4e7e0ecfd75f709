"""Shared terminal output: the console, progress bars and the ingest summary table."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from perennial.ingest.report import IngestReport

__all__ = [
    "console",
    "ingest_summary",
    "print_ingest_reports",
    "progress_bar",
    "progress_callback",
    "reasons_table",
]

console = Console(width=None if sys.stdout.isatty() else 140)
"""Piped output (CI logs, files) gets wide enough tables instead of 80 folded columns."""


def progress_bar() -> Progress:
    """A progress display that stays quiet when output is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def progress_callback(bar: Progress, task: TaskID) -> Callable[[int], None]:
    """A callback that moves ``task`` to the number of rows read so far."""

    def advance(rows: int) -> None:
        bar.update(task, completed=rows)

    return advance


def ingest_summary(reports: list[IngestReport]) -> Table:
    """One line per file: what was read and where every row went."""
    table = Table(title="Ingest summary")
    columns = (
        "file",
        "table",
        "read",
        "accepted",
        "quarantined",
        "dup. in file",
        "already stored",
        "superseded",
        "replaced",
        "id merges / conflicts",
        "s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("file", "table") else "right")
    for r in reports:
        table.add_row(
            Path(r.source_file).name,
            r.table,
            f"{r.rows_read:,}",
            f"{r.accepted:,}",
            f"{r.quarantined:,}",
            f"{r.duplicates_in_batch:,}",
            f"{r.already_stored:,}",
            f"{r.superseded_in_batch:,}",
            f"{r.replaced:,}",
            f"{r.identity_merges:,} / {r.identity_conflicts:,}",
            f"{r.seconds:.1f}",
        )
    return table


def print_ingest_reports(reports: list[IngestReport]) -> None:
    """The summary table, and the quarantine reasons when there are any."""
    console.print(ingest_summary(reports))
    reasons = reasons_table(reports)
    if reasons is not None:
        console.print(reasons)


def reasons_table(reports: list[IngestReport]) -> Table | None:
    counts: dict[tuple[str, str], int] = {}
    for r in reports:
        for reason, count in r.quarantine_reasons.items():
            counts[(r.source_file, reason)] = counts.get((r.source_file, reason), 0) + count
    if not counts:
        return None
    table = Table(title="Quarantined, by reason (see `perennial quarantine`)")
    table.add_column("file")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for (source, reason), count in sorted(counts.items()):
        table.add_row(Path(source).name, reason, f"{count:,}")
    return table
