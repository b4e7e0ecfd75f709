"""``perennial features``, ``perennial profile`` and ``perennial lifecycle ...``.

``lifecycle stages|compute`` work on one as-of; ``lifecycle backfill|report|flows``
build and read the daily stage history.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from perennial.cli.output import console, progress_bar
from perennial.cli.serving import refresh_and_report
from perennial.config import Settings, load_settings
from perennial.errors import PerennialError
from perennial.features.buckets import feature_table
from perennial.lifecycle.backfill import BackfillResult, StageDay, backfill
from perennial.lifecycle.flows import Flow, flow_matrix, lifecycle_report
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profile_card import profile_card
from perennial.lifecycle.profiles import (
    StageCount,
    as_of_instant,
    build_profiles,
    stage_distribution,
    store_profile_rows,
    stored_stage_counts,
)
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.models.predictions import PREDICTIONS_TABLE
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Snapshot, Warehouse

__all__ = [
    "UnknownCustomerError",
    "compute_and_store_profiles",
    "compute_profiles",
    "features_command",
    "lifecycle_app",
    "print_lifecycle_report",
    "profile_command",
    "run_backfill",
    "stored_predictions",
]

lifecycle_app = typer.Typer(help="Lifecycle stages and profiles.", no_args_is_help=True)

AsOf = Annotated[
    str | None,
    typer.Option(help="A date (the end of that local day) or a timestamp; default now."),
]
EngineOption = Annotated[
    Literal["duckdb", "spark"], typer.Option(help="Where to compute: duckdb or spark (local).")
]
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Stage model: a shipped preset (seed000, seed002) or a YAML file "
        "(copy one from examples/lifecycle/).",
    ),
]
DEFAULT_MODEL = "seed000"
FromDay = Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, local).")]
ToDay = Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD, local), included.")]


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
        with _features(settings, backend, snapshot, instant) as features:
            table = backend.to_pyarrow(features)
    _write(table, output)
    console.print(f"{table.num_rows:,} customers x {table.num_columns} features -> {output}")


def profile_command(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    model: ModelOption = DEFAULT_MODEL,
    as_of: AsOf = None,
    lang: Annotated[
        Literal["zh", "en"], typer.Option(help="Labels in Chinese (zh-CN) or English.")
    ] = "zh",
) -> None:
    """Show one customer's profile: stage, RFM, value tier and every feature."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    profiles = compute_profiles(settings, stage_model, as_of, "duckdb")
    rows = profiles.filter(pc.equal(profiles.column("customer_id"), customer_id)).to_pylist()
    if not rows:
        raise UnknownCustomerError(f"{customer_id!r}: no such customer as of the given time")
    card = profile_card(rows[0], stage_model, lang=lang, timezone=settings.default_timezone)
    title = "客户画像" if lang == "zh" else "Customer profile"
    view = Table(title=f"{title}: {card.customer_id} ({card.stage})", show_header=False)
    view.add_column("field")
    view.add_column("value", overflow="fold")
    for section in card.sections:
        view.add_section()
        view.add_row(f"[bold]{section.title}[/]", "")
        for field in section.fields:
            view.add_row(field.label, field.value)
    _add_predictions(view, stored_predictions(settings, customer_id), lang)
    console.print(view)


_PREDICTION_LABELS: dict[str, tuple[str, str]] = {
    "churn_probability": ("Churn probability", "流失概率"),
    "churn_risk_band": ("Risk band", "风险等级"),
    "churn_reasons": ("Reasons", "原因"),
    "p_alive": ("Probability still active", "仍活跃的概率"),
    "clv_12m": ("Predicted value, 12 months", "预测价值（12个月）"),
    "expected_purchases_90d": ("Expected purchases, 90 days", "预计购买次数（90天）"),
    "next_order": ("Expected next order (80 % window)", "预计下次下单（80%区间）"),
}


def stored_predictions(settings: Settings, customer_id: str) -> dict[str, Any] | None:
    """The customer's row of the stored predictions (``perennial predict``), if any."""
    paths = Warehouse(settings.warehouse).snapshot().paths(PREDICTIONS_TABLE)
    if not paths:
        return None
    table = pq.read_table(paths, filters=[("customer_id", "=", customer_id)])
    rows = table.to_pylist()
    return rows[0] if rows else None


def _add_predictions(view: Table, row: dict[str, Any] | None, lang: str) -> None:
    if row is None:
        return
    label = {k: (zh if lang == "zh" else en) for k, (en, zh) in _PREDICTION_LABELS.items()}
    as_of = row["as_of"].strftime("%Y-%m-%d %H:%M UTC")
    view.add_section()
    view.add_row(f"[bold]{'预测' if lang == 'zh' else 'Predictions'}[/] ({as_of})", "")
    if row["churn_probability"] is not None:
        view.add_row(label["churn_probability"], f"{row['churn_probability']:.1%}")
        view.add_row(label["churn_risk_band"], str(row["churn_risk_band"]))
        reasons = row["churn_reasons_zh" if lang == "zh" else "churn_reasons_en"] or []
        view.add_row(label["churn_reasons"], "\n".join(reasons) or "-")
    for name, shape in (
        ("p_alive", "{:.1%}"),
        ("clv_12m", "{:,.2f}"),
        ("expected_purchases_90d", "{:.2f}"),
    ):
        if row[name] is not None:
            view.add_row(label[name], shape.format(row[name]))
    if row["next_order_expected_at"] is not None:
        window = f"{row['next_order_earliest']} .. {row['next_order_latest']}"
        view.add_row(label["next_order"], f"{row['next_order_expected_at']} ({window})")


@lifecycle_app.command("stages")
def _stages_command(
    model: ModelOption = DEFAULT_MODEL, as_of: AsOf = None, engine: EngineOption = "duckdb"
) -> None:
    """Print how many customers are in each stage of a stage model."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    profiles = compute_profiles(settings, stage_model, as_of, engine)
    _print_distribution(profiles, stage_model)


@lifecycle_app.command("compute")
def _compute_command(
    model: ModelOption = DEFAULT_MODEL, as_of: AsOf = None, engine: EngineOption = "duckdb"
) -> None:
    """Compute profiles (features, RFM, tier, stage) and store them as the profiles table."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    compute_and_store_profiles(settings, stage_model, as_of, engine)


@lifecycle_app.command("backfill")
def _backfill_command(
    start: FromDay, end: ToDay, model: ModelOption = DEFAULT_MODEL, engine: EngineOption = "duckdb"
) -> None:
    """Build the daily stage history and transitions for a range of days (replaces the range)."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    first, last = _day(start, "--from"), _day(end, "--to")
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    run_backfill(settings, stage_model, first, last, engine)


@lifecycle_app.command("report")
def _report_command(
    model: ModelOption = DEFAULT_MODEL,
    as_of: Annotated[
        str | None, typer.Option(help="A day of the history (YYYY-MM-DD); default its last.")
    ] = None,
) -> None:
    """Print the stage distribution, the last 30 days' flows and the top movers."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    print_lifecycle_report(settings, stage_model, _day(as_of, "--as-of") if as_of else None)


@lifecycle_app.command("flows")
def _flows_command(start: FromDay, end: ToDay, model: ModelOption = DEFAULT_MODEL) -> None:
    """Print how many customers moved from each stage on one day to each stage on another."""
    settings = load_settings()
    stage_model = load_stage_model(resolve_model_path(model))
    first, last = _day(start, "--from"), _day(end, "--to")
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        flows = flow_matrix(backend, snapshot, stage_model.name, first, last)
    _print_flows(f"{stage_model.name}: {first} -> {last}", flows, stage_model)


def run_backfill(
    settings: Settings,
    stage_model: StageModel,
    first: date,
    last: date,
    engine: Literal["duckdb", "spark"] = "duckdb",
) -> BackfillResult:
    """Backfill ``first``..``last`` with a progress bar, then print what was stored."""
    zone = stage_model.timezone or settings.default_timezone
    with progress_bar() as bar, open_backend(settings, engine) as backend:
        task = bar.add_task(f"{stage_model.name} {first}", total=(last - first).days + 1)

        def advance(stage_day: StageDay) -> None:
            bar.update(task, advance=1, description=f"{stage_model.name} {stage_day.day}")

        snapshot = Warehouse(settings.warehouse).snapshot()
        result = backfill(
            backend, snapshot, stage_model, first, last, timezone=zone, on_day=advance
        )
    days = (last - first).days + 1
    console.print(
        f"{stage_model.name}: {days:,} days ({first} to {last}, {zone}), "
        f"{result.stage_rows:,} stage rows, {result.transitions:,} transitions, "
        f"{result.recomputed / days:,.0f} customers recomputed per day; "
        f"store version {result.version}"
    )
    return result


def print_lifecycle_report(settings: Settings, stage_model: StageModel, day: date | None) -> None:
    """The stage distribution on ``day`` (default: the history's last), 30 days' flows, movers."""
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        report = lifecycle_report(backend, snapshot, stage_model, day)
    total = sum(count.customers for count in report.distribution)
    title = f"{report.model} on {report.day}: {total:,} customers"
    _print_counts(title, report.distribution, report.median_days_in_stage)
    _print_flows(f"Flows {report.flows_since} -> {report.day}", report.flows, stage_model)
    movers = Table(title=f"Top movers {report.flows_since} -> {report.day}")
    for name in ("from", "to", "customers"):
        movers.add_column(name, justify="right" if name == "customers" else "left")
    for flow in report.top_movers:
        movers.add_row(flow.from_stage, flow.to_stage, f"{flow.customers:,}")
    console.print(movers)


def compute_and_store_profiles(
    settings: Settings,
    stage_model: StageModel,
    as_of: str | None,
    engine: Literal["duckdb", "spark"] = "duckdb",
    *,
    refresh: bool = True,
) -> int:
    """Compute, store as the ``profiles`` table and print the stage distribution; then
    (unless ``refresh`` is false) rebuild the serving store the API reads. Returns the
    number of profiles. The engine streams the rows to the warehouse (and counts the
    stages there), so no store is too large for Python's memory."""
    instant = as_of_instant(as_of, settings.default_timezone)
    warehouse = Warehouse(settings.warehouse)
    with (
        console.status(f"computing profiles as of {instant:%Y-%m-%d %H:%M %Z} ..."),
        open_backend(settings, engine) as backend,
    ):
        snapshot = warehouse.snapshot()
        with _features(settings, backend, snapshot, instant) as features:
            expression = build_profiles(
                backend,
                snapshot,
                instant,
                stage_model,
                timezone=settings.default_timezone,
                features=features,
            )
            stored = store_profile_rows(warehouse, backend, expression, "profiles")
        counts = stored_stage_counts(backend, warehouse.snapshot(), stage_model)
    _print_counts(f"{stage_model.name}: {stored:,} customers", counts)
    console.print(f"{stored:,} profiles stored in {settings.warehouse}")
    if refresh:
        refresh_and_report(settings, stage_model)
    return stored


def compute_profiles(
    settings: Settings,
    stage_model: StageModel,
    as_of: str | None,
    engine: Literal["duckdb", "spark"],
) -> pa.Table:
    """Every customer's profile as of ``as_of`` (a day or an instant; default now)."""
    instant = as_of_instant(as_of, settings.default_timezone)
    with (
        console.status(f"computing profiles as of {instant:%Y-%m-%d %H:%M %Z} ..."),
        open_backend(settings, engine) as backend,
    ):
        snapshot = Warehouse(settings.warehouse).snapshot()
        with _features(settings, backend, snapshot, instant) as features:
            expression = build_profiles(
                backend,
                snapshot,
                instant,
                stage_model,
                timezone=settings.default_timezone,
                features=features,
            )
            return backend.to_pyarrow(expression)


def _features(
    settings: Settings, backend: Backend, snapshot: Snapshot, instant: datetime
) -> AbstractContextManager[ir.Table]:
    """The feature table as of ``instant``, bucketed when the store needs it."""
    return feature_table(
        backend,
        snapshot,
        instant,
        workdir=settings.home / "tmp",
        timezone=settings.default_timezone,
        buckets=settings.feature_buckets,
    )


def _print_distribution(profiles: pa.Table, stage_model: StageModel) -> None:
    title = f"{stage_model.name}: {profiles.num_rows:,} customers"
    _print_counts(title, stage_distribution(profiles, stage_model))


def _print_counts(
    title: str, counts: list[StageCount], median_days: dict[str, float] | None = None
) -> None:
    """One row per stage; with ``median_days``, also the median stay in the stage."""
    view = Table(title=title)
    names = ["stage", "label", "标签", "customers", "share"]
    names += ["median days in stage"] if median_days is not None else []
    for name in names:
        view.add_column(name, justify="left" if name in ("stage", "label", "标签") else "right")
    for count in counts:
        cells = [
            count.key or "-",
            count.label_en,
            count.label_zh,
            f"{count.customers:,}",
            f"{count.share:.1%}",
        ]
        if median_days is not None:
            median = median_days.get(count.key or "")
            cells.append("-" if median is None else f"{median:g}")
        view.add_row(*cells)
    console.print(view)


def _print_flows(title: str, flows: list[Flow], stage_model: StageModel) -> None:
    """Rows: the stage on the first day; columns: the stage on the last day."""
    order = {key: index for index, key in enumerate(stage_model.keys)}
    targets = sorted({f.to_stage for f in flows}, key=lambda key: (order.get(key, len(order)), key))
    sources = sorted({f.from_stage for f in flows}, key=lambda key: (order.get(key, -1), key))
    cells = {(f.from_stage, f.to_stage): f.customers for f in flows}
    view = Table(title=title)
    view.add_column("from \\ to")
    for target in targets:
        view.add_column(target, justify="right")
    for source in sources:
        view.add_row(source, *[f"{cells.get((source, target), 0):,}" for target in targets])
    console.print(view)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a day (YYYY-MM-DD)", param_hint=option
        ) from None


def _write(table: pa.Table, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        pacsv.write_csv(table, output)
    else:
        pq.write_table(table, output)
