"""``perennial features``, ``perennial profile`` and ``perennial lifecycle stages|compute``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.errors import PerennialError
from perennial.features.snapshot import compute_features
from perennial.lifecycle.profiles import (
    as_of_instant,
    build_profiles,
    stage_distribution,
    store_profiles,
)
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse

__all__ = ["UnknownCustomerError", "features_command", "lifecycle_app", "profile_command"]

lifecycle_app = typer.Typer(help="Lifecycle stages and profiles.", no_args_is_help=True)

AsOf = Annotated[
    str | None,
    typer.Option(help="A date (the end of that local day) or a timestamp; default now."),
]
EngineOption = Annotated[
    Literal["duckdb", "spark"], typer.Option(help="Where to compute: duckdb or spark (local).")
]
ModelOption = Annotated[
    Path,
    typer.Option("--model", "-m", help="Stage model YAML (see examples/lifecycle/)."),
]
DEFAULT_MODEL = Path("examples/lifecycle/seed000.yaml")


class UnknownCustomerError(PerennialError):
    """No profile for the customer id as of the given instant."""


def features_command(
    output: Annotated[Path, typer.Option(help="Write the features here (.parquet or .csv).")],
    as_of: AsOf = None,
    engine: EngineOption = "duckdb",
) -> None:
    """Compute every customer's features as of a date, from data before it only."""
    settings = load_settings()
    instant = as_of_instant(as_of, settings.default_timezone)
    with (
        console.status(f"computing features as of {instant:%Y-%m-%d %H:%M %Z} ..."),
        open_backend(settings, engine) as backend,
    ):
        snapshot = Warehouse(settings.warehouse).snapshot()
        table = backend.to_pyarrow(
            compute_features(backend, snapshot, instant, timezone=settings.default_timezone)
        )
    _write(table, output)
    console.print(f"{table.num_rows:,} customers x {table.num_columns} features -> {output}")


def profile_command(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    model: ModelOption = DEFAULT_MODEL,
    as_of: AsOf = None,
    lang: Annotated[Literal["en", "zh"], typer.Option(help="Labels in English or Chinese.")] = "en",
) -> None:
    """Show one customer's profile: stage, RFM, value tier and every feature."""
    settings = load_settings()
    stage_model = load_stage_model(model)
    profiles = _profiles(settings, stage_model, as_of, "duckdb")
    rows = profiles.filter(pc.equal(profiles.column("customer_id"), customer_id)).to_pylist()
    if not rows:
        raise UnknownCustomerError(f"{customer_id!r}: no such customer as of the given time")
    row = rows[0]
    stage = next((s for s in stage_model.stages if s.key == row["stage"]), None)
    label = (stage.label_zh if lang == "zh" else stage.label_en) if stage else "-"
    title = "客户画像" if lang == "zh" else "Customer profile"
    view = Table(title=f"{title}: {customer_id} ({label})")
    view.add_column("field")
    view.add_column("value", overflow="fold")
    for name, value in row.items():
        view.add_row(name, "" if value is None else str(value))
    console.print(view)


@lifecycle_app.command("stages")
def _stages_command(
    model: ModelOption = DEFAULT_MODEL, as_of: AsOf = None, engine: EngineOption = "duckdb"
) -> None:
    """Print how many customers are in each stage of a stage model."""
    settings = load_settings()
    stage_model = load_stage_model(model)
    profiles = _profiles(settings, stage_model, as_of, engine)
    _print_distribution(profiles, stage_model)


@lifecycle_app.command("compute")
def _compute_command(
    model: ModelOption = DEFAULT_MODEL, as_of: AsOf = None, engine: EngineOption = "duckdb"
) -> None:
    """Compute profiles (features, RFM, tier, stage) and store them as the profiles table."""
    settings = load_settings()
    stage_model = load_stage_model(model)
    profiles = _profiles(settings, stage_model, as_of, engine)
    stored = store_profiles(Warehouse(settings.warehouse), profiles, "profiles")
    _print_distribution(profiles, stage_model)
    console.print(f"{stored:,} profiles stored in {settings.warehouse}")


def _profiles(
    settings: Settings,
    stage_model: StageModel,
    as_of: str | None,
    engine: Literal["duckdb", "spark"],
) -> pa.Table:
    instant = as_of_instant(as_of, settings.default_timezone)
    with (
        console.status(f"computing profiles as of {instant:%Y-%m-%d %H:%M %Z} ..."),
        open_backend(settings, engine) as backend,
    ):
        snapshot = Warehouse(settings.warehouse).snapshot()
        expression = build_profiles(
            backend, snapshot, instant, stage_model, timezone=settings.default_timezone
        )
        return backend.to_pyarrow(expression)


def _print_distribution(profiles: pa.Table, stage_model: StageModel) -> None:
    view = Table(title=f"{stage_model.name}: {profiles.num_rows:,} customers")
    for name in ("stage", "label", "标签", "customers", "share"):
        view.add_column(name, justify="right" if name in ("customers", "share") else "left")
    for count in stage_distribution(profiles, stage_model):
        view.add_row(
            count.key or "-",
            count.label_en,
            count.label_zh,
            f"{count.customers:,}",
            f"{count.share:.1%}",
        )
    console.print(view)


def _write(table: pa.Table, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        pacsv.write_csv(table, output)
    else:
        pq.write_table(table, output)
