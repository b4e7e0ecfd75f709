"""``perennial predict``: every customer's predictions, stored for the API, pages and segments.

By default the predictions are made as of the stored profiles' instant, so the
360 shows a stage, an RFM code and a churn risk that describe the same moment.
The demo also trains and promotes a first churn model (:func:`train_first_churn_model`)
so that a new user sees risks and reasons without knowing the model commands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.errors import PerennialError
from perennial.lifecycle.profiles import PROFILES_TABLE, as_of_instant
from perennial.models.churn_config import resolve_churn_config
from perennial.models.predictions import PredictionRun, compute_predictions, store_predictions
from perennial.models.registry import CHURN_KIND, ModelRegistry, save_churn_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse

__all__ = ["predict_and_store", "predict_command", "train_first_churn_model"]


def predict_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="A date (the end of that local day) or a timestamp; default the stored "
            "profiles' as-of, or now when there are none."
        ),
    ] = None,
) -> None:
    """Compute CLV, P(alive), churn risk with reasons and next-order dates for every
    customer and store them (then `perennial serving refresh` serves them)."""
    settings = load_settings()
    predict_and_store(settings, as_of)
    console.print(
        "run `perennial serving refresh` to show them in the API and the dashboard",
        highlight=False,
    )


def predict_and_store(settings: Settings, as_of: str | None) -> PredictionRun:
    """Compute, store and summarise the predictions as of ``as_of`` (see the command)."""
    instant = _prediction_instant(settings, as_of)
    warehouse = Warehouse(settings.warehouse)
    with (
        console.status(f"predicting as of {instant:%Y-%m-%d %H:%M %Z} ..."),
        open_backend(settings) as backend,
    ):
        run = compute_predictions(
            backend,
            warehouse.snapshot(),
            instant,
            ModelRegistry.for_settings(settings),
            timezone=settings.default_timezone,
        )
    stored = store_predictions(warehouse, run.table, "predictions")
    _print_summary(run, stored)
    return run


def train_first_churn_model(settings: Settings) -> str | None:
    """Train, save and promote a churn model when none is promoted yet; the version, or
    ``None`` (with the reason printed) when the store holds too little history."""
    from perennial.models.churn_model import train_churn_model  # LightGBM: only when needed

    registry = ModelRegistry.for_settings(settings)
    if registry.latest_promoted(CHURN_KIND) is not None:
        return None
    config = resolve_churn_config(None)
    try:
        with (
            console.status("training the churn model ...") as status,
            open_backend(settings) as backend,
        ):
            model = train_churn_model(
                backend,
                Warehouse(settings.warehouse).snapshot(),
                config,
                data_end=None,
                timezone=settings.default_timezone,
                progress=status.update,
            )
    except PerennialError as error:
        console.print(f"[yellow]no churn model:[/] {error}", highlight=False)
        return None
    stored = registry.promote(save_churn_model(registry, model).version)
    metrics = model.metadata["metrics"]
    console.print(
        f"churn model {stored.version}: out-of-time AUC {metrics['auc']:.3f} "
        f"(recency rule {metrics['baseline_recency_auc']:.3f}), promoted",
        highlight=False,
    )
    return stored.version


def _prediction_instant(settings: Settings, as_of: str | None) -> datetime:
    if as_of is not None:
        return as_of_instant(as_of, settings.default_timezone)
    paths = Warehouse(settings.warehouse).snapshot().paths(PROFILES_TABLE)
    if paths:
        with duckdb.connect() as duck:
            row = duck.execute("SELECT max(as_of) FROM read_parquet(?)", [paths]).fetchone()
        if row is not None and isinstance(row[0], datetime):
            return row[0]
    return as_of_instant(None, settings.default_timezone)


def _print_summary(run: PredictionRun, stored: int) -> None:
    table = run.table
    view = Table(title=f"Predictions: {stored:,} customers")
    view.add_column("prediction")
    view.add_column("customers", justify="right")
    view.add_column("mean", justify="right")
    for column in ("p_alive", "clv_12m", "churn_probability", "next_order_probability_30d"):
        values = table.column(column)
        count = len(values) - values.null_count
        mean = sum(v for v in values.to_pylist() if v is not None) / count if count else None
        view.add_row(column, f"{count:,}", "-" if mean is None else f"{mean:,.3f}")
    console.print(view)
    for note in run.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
