"""``perennial segments list|show|create|preview|export|load|refresh`` and ``perennial tags``.

The same service as the API and the page: a definition is checked before it is
saved (a mistake prints the expression with a caret under the column and exits
with the configuration code), and saving refreshes the membership at once.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import load_settings
from perennial.errors import ConfigError
from perennial.segments.documents import load_segment_document
from perennial.segments.export import csv_lines
from perennial.segments.repository import members_page
from perennial.segments.service import SegmentService
from perennial.segments.tag_store import list_tags, tag_counts

__all__ = [
    "create_command",
    "export_command",
    "list_command",
    "load_command",
    "preview_command",
    "refresh_command",
    "segments_app",
    "show_command",
    "tags_app",
    "tags_define_command",
    "tags_import_command",
    "tags_list_command",
    "tags_refresh_command",
]

segments_app = typer.Typer(help="Segments: saved, live groups of customers.", no_args_is_help=True)
tags_app = typer.Typer(
    help="Tags: rule, computed, imported and manual labels.", no_args_is_help=True
)

Expression = Annotated[str, typer.Argument(help="The expression, e.g. \"stage == 'dormant'\".")]
Name = Annotated[str, typer.Argument(help="The segment's name.")]


def _service() -> SegmentService:
    return SegmentService.migrated(load_settings())


@segments_app.command("list")
def list_command() -> None:
    """Every saved segment with its size and when it was last refreshed."""
    table = Table(title="Segments")
    for column in ("name", "title", "version", "members", "refreshed", "expression"):
        table.add_column(column, justify="right" if column in ("version", "members") else "left")
    for segment in _service().all_segments():
        refreshed = (
            segment.refreshed_at.isoformat(timespec="seconds") if segment.refreshed_at else "-"
        )
        table.add_row(
            segment.name,
            segment.title,
            str(segment.version),
            f"{segment.members:,}",
            refreshed,
            segment.expression,
        )
    console.print(table)


@segments_app.command("show")
def show_command(name: Name) -> None:
    """One segment: its definition and its first members."""
    service = _service()
    segment = service.get(name)
    console.print(
        f"[bold]{segment.name}[/] (version {segment.version}): {segment.title}", highlight=False
    )
    if segment.description:
        console.print(segment.description, highlight=False)
    console.print(f"expression: {segment.expression}", highlight=False)
    console.print(f"members: {segment.members:,}", highlight=False)
    with service.operational.connect() as connection:
        for customer, entered in members_page(connection, name, after=None, limit=10):
            console.print(
                f"  {customer}  since {entered.isoformat(timespec='seconds')}", highlight=False
            )


@segments_app.command("preview")
def preview_command(
    expression: Expression,
    sample: Annotated[int, typer.Option(min=0, max=100)] = 10,
) -> None:
    """Count who matches now, without saving anything."""
    result = _service().preview(expression, sample=sample)
    console.print(
        f"{result.count:,} of {result.customers:,} customers ({result.seconds:.2f} s): "
        f"{result.expression}",
        highlight=False,
    )
    for customer in result.sample:
        console.print(f"  {customer}", highlight=False)


@segments_app.command("create")
def create_command(
    name: Name,
    expression: Expression,
    title: Annotated[str, typer.Option()] = "",
    description: Annotated[str, typer.Option()] = "",
    live: Annotated[bool, typer.Option(help="Keep membership current as events arrive.")] = True,
) -> None:
    """Save a segment (a new version if it exists) and compute its members."""
    saved, result = _service().save(
        name, expression, title=title, description=description, live=live, user="cli"
    )
    members, entered, exited = (
        (saved.members, 0, 0) if result is None else (result.members, result.entered, result.exited)
    )
    console.print(
        f"saved {saved.name} version {saved.version}: {members:,} members "
        f"({entered:,} entered, {exited:,} left)",
        highlight=False,
    )


@segments_app.command("load")
def load_command(path: Annotated[Path, typer.Argument(help="A YAML file of segments.")]) -> None:
    """Save every segment of a file, all or nothing (examples/segments/presets.yaml)."""
    document = load_segment_document(path)
    results = _service().save_many(document.segments, user="cli")
    for result in results:
        console.print(
            f"{result.name}: {result.members:,} members ({result.entered:,} entered, "
            f"{result.exited:,} left)",
            highlight=False,
        )


@segments_app.command("refresh")
def refresh_command(names: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Recompute membership (default: every live segment), logging enters and exits."""
    for result in _service().refresh(names or None):
        console.print(
            f"{result.name}: {result.members:,} members, {result.entered:,} entered, "
            f"{result.exited:,} left ({result.seconds:.2f} s)",
            highlight=False,
        )


@segments_app.command("export")
def export_command(
    name: Name,
    out: Annotated[Path | None, typer.Option(help="A CSV file; default standard output.")] = None,
) -> None:
    """Members as CSV: customer_id, entered_at."""
    service = _service()
    service.get(name)
    with service.operational.connect() as connection:
        rows = members_page(connection, name, after=None, limit=10_000_000)
    if out is None:
        for line in csv_lines(rows):
            sys.stdout.write(line)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(csv_lines(rows))
    console.print(f"{len(rows):,} members written to {out}", highlight=False)


@tags_app.command("list")
def tags_list_command() -> None:
    """Every tag with its kind and how many customers carry it."""
    service = _service()
    with service.operational.connect() as connection:
        counts = tag_counts(connection)
        tags = list_tags(connection)
    table = Table(title="Tags")
    for column in ("name", "kind", "customers", "rule or meaning"):
        table.add_column(column, justify="right" if column == "customers" else "left")
    for tag in tags:
        table.add_row(
            tag.name,
            tag.kind.value,
            f"{counts.get(tag.name, 0):,}",
            tag.expression or tag.description,
        )
    console.print(table)


@tags_app.command("define")
def tags_define_command(
    name: Annotated[str, typer.Argument()],
    expression: Expression,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """A rule tag: every customer matching the expression carries it."""
    result = _service().define_rule_tag(name, expression, description=description, user="cli")
    console.print(f"{result.name}: {result.tagged:,} customers tagged", highlight=False)


@tags_app.command("refresh")
def tags_refresh_command() -> None:
    """Recompute rule tags and the computed ones (favourite category, channel, price)."""
    for result in _service().refresh_tags(user="cli"):
        console.print(
            f"{result.name}: {result.tagged:,} tagged ({result.changed:,} set or changed, "
            f"{result.removed:,} removed)",
            highlight=False,
        )


@tags_app.command("import")
def tags_import_command(
    name: Annotated[str, typer.Argument()],
    path: Annotated[Path, typer.Argument(help="CSV with customer_id and optionally value.")],
) -> None:
    """Tag the customers listed in a CSV; lines that cannot be applied are listed."""
    rows = _csv_rows(path)
    result = _service().import_tag(name, rows, source_name=path.name, user="cli")
    console.print(f"{result.name}: {result.tagged:,} customers tagged", highlight=False)
    for line, customer, reason in result.rejected[:50]:
        console.print(f"  line {line}: {customer!r}: {reason}", highlight=False)
    if len(result.rejected) > 50:
        console.print(f"  ... and {len(result.rejected) - 50:,} more", highlight=False)


def _csv_rows(path: Path) -> list[tuple[int, str, str | None]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "customer_id" not in reader.fieldnames:
                raise ConfigError(str(path), "", "the CSV needs a header with a customer_id column")
            return [
                (
                    line,
                    (row.get("customer_id") or "").strip(),
                    (row.get("value") or "").strip() or None,
                )
                for line, row in enumerate(reader, start=2)
            ]
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), "", f"cannot read the CSV: {error}") from None
