"""``perennial init`` and ``perennial store info|compact``."""

from __future__ import annotations

import typer
from rich.table import Table

from perennial.cli.access import create_first_admin, print_first_admin
from perennial.cli.output import console
from perennial.config import load_settings
from perennial.store.compaction import compact
from perennial.store.engine import connect
from perennial.store.operational import migrate
from perennial.store.summary import store_summary
from perennial.store.warehouse import Warehouse

__all__ = ["init_command", "store_app"]

store_app = typer.Typer(help="Inspect and maintain the stores.", no_args_is_help=True)


def init_command() -> None:
    """Create the local stores (warehouse folder, operational database) if missing, and
    the first admin with a generated password, printed once, if there is no user yet."""
    settings = load_settings()
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    console.print(f"warehouse:   {settings.warehouse.resolve()}")
    console.print(f"operational: {settings.operational_database_url}")
    print_first_admin(create_first_admin(settings))


@store_app.command("info")
def _info_command() -> None:
    """Tables, rows and files at the newest committed version."""
    summary = store_summary(load_settings())
    view = Table(title=f"Warehouse at version {summary.version}")
    view.add_column("table")
    view.add_column("rows", justify="right")
    view.add_column("files", justify="right")
    for name, rows in summary.rows.items():
        view.add_row(name, f"{rows:,}", f"{summary.files[name]:,}")
    console.print(view)


@store_app.command("compact")
def _compact_command() -> None:
    """Merge each partition's small files into one (atomic, like any batch)."""
    settings = load_settings()
    con = connect(settings)
    try:
        with console.status("compacting small files ..."):
            result = compact(Warehouse(settings.warehouse), con)
    finally:
        con.close()
    console.print(f"files: {result.files_before:,} -> {result.files_after:,}")
