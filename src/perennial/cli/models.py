"""``perennial models train|evaluate|list|promote``: the churn model's life in the registry.

``train`` learns from the store's history and saves a candidate version;
``evaluate`` shows a version's out-of-time metrics and measures it again on the
latest complete outcome window of the store as it is now; ``promote`` makes a
version the one scoring uses.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.lifecycle.profiles import as_of_instant
from perennial.models.churn_config import resolve_churn_config
from perennial.models.churn_labels import (
    InsufficientDataError,
    data_end_of,
    labelled_rows,
    require_enough_labels,
    split_cutoffs,
)
from perennial.models.registry import (
    IncompleteModelWarning,
    ModelRegistry,
    ModelVersion,
    load_churn_model,
    save_churn_model,
)
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Predictive models: train, evaluate, list and promote churn models.",
    no_args_is_help=True,
)

AsOf = Annotated[
    str | None,
    typer.Option(
        help="The data's end: a date (the end of that local day) or a timestamp; "
        "default the store's latest order or event."
    ),
]
ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="Churn definition: a preset (purchase, subscription) or a YAML file; "
        "default purchase (no paid order in 90 days).",
    ),
]
Version = Annotated[str, typer.Argument(help="A model version, e.g. churn-0001.")]

_METRICS = (
    ("rows", "labelled customers", "{:,}"),
    ("churned", "churned", "{:,}"),
    ("base_rate", "churn rate", "{:.1%}"),
    ("auc", "AUC", "{:.3f}"),
    ("pr_auc", "PR-AUC", "{:.3f}"),
    ("brier", "Brier", "{:.4f}"),
    ("lift_top_decile", "lift, top 10 %", "{:.2f}"),
    ("baseline_recency_auc", "AUC, recency rule", "{:.3f}"),
    ("baseline_rhythm_auc", "AUC, own-rhythm rule", "{:.3f}"),
)


@models_app.command("train")
def _train_command(as_of: AsOf = None, config: ConfigOption = None) -> None:
    """Train a churn model on past cut-offs, validate it out of time and save a candidate."""
    from perennial.models.churn_model import train_churn_model  # LightGBM: only when needed

    settings = load_settings()
    churn_config = resolve_churn_config(config)
    data_end = _data_end(settings, as_of)
    with (
        console.status("training the churn model ...") as status,
        open_backend(settings) as backend,
    ):
        model = train_churn_model(
            backend,
            Warehouse(settings.warehouse).snapshot(),
            churn_config,
            data_end=data_end,
            timezone=settings.default_timezone,
            progress=status.update,
        )
    stored = save_churn_model(ModelRegistry.for_settings(settings), model)
    cutoffs = model.metadata["cutoffs"]
    console.print(
        f"{stored.version} ({churn_config.name}): validated on cut-off "
        f"{cutoffs['validation'][:10]}, horizon {churn_config.label.horizon_days} d",
        highlight=False,
    )
    console.print(
        _metrics_table("Out-of-time validation", {"validation": model.metadata["metrics"]})
    )
    console.print(
        f"saved {stored.version} as a candidate in {stored.path}; "
        f"make it the scoring model with `perennial models promote {stored.version}`"
    )


@models_app.command("evaluate")
def _evaluate_command(version: Version, as_of: AsOf = None) -> None:
    """Show a version's validation metrics and measure it again on the store as it is now."""
    from perennial.models.churn_model import churn_metrics  # LightGBM: only when needed

    settings = load_settings()
    model, stored = load_churn_model(ModelRegistry.for_settings(settings), version)
    with console.status(f"evaluating {version} ..."), open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        end = _data_end(settings, as_of) or data_end_of(backend, snapshot)
        if end is None:
            raise InsufficientDataError("the store holds no orders or events to evaluate on")
        cutoffs = split_cutoffs(end, model.config)
        cutoff = cutoffs.validation
        rows = labelled_rows(
            backend, snapshot, cutoff, model.config, timezone=settings.default_timezone
        )
    require_enough_labels("validation", [rows], cutoffs, model.config)
    now = churn_metrics(model.predict_proba(rows), rows)
    columns = {
        f"at training ({stored.metadata['cutoffs']['validation'][:10]})": stored.metadata[
            "metrics"
        ],
        f"now ({cutoff:%Y-%m-%d})": now.as_dict(),
    }
    console.print(_metrics_table(f"{version} ({stored.status})", columns))
    if cutoff < datetime.fromisoformat(stored.metadata["cutoffs"]["validation"]):
        console.print(
            f"note: cut-off {cutoff:%Y-%m-%d} precedes the version's validation cut-off; "
            "its outcomes overlap what the model was trained or calibrated on",
            highlight=False,
        )


@models_app.command("list")
def _list_command() -> None:
    """List every stored model version with its status and validation metrics."""
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always", IncompleteModelWarning)
        versions = ModelRegistry.for_settings(load_settings()).list()
    for warning in skipped:
        console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
    if not versions:
        console.print("no models yet: train one with `perennial models train`")
        return
    view = Table(title="Models")
    for name in ("version", "status", "created", "data end", "rows", "AUC", "recency AUC"):
        view.add_column(name, justify="right" if "AUC" in name or name == "rows" else "left")
    for stored in versions:
        view.add_row(*_list_cells(stored))
    console.print(view)


@models_app.command("promote")
def _promote_command(version: Version) -> None:
    """Make a version the one that scores customers (the previous one becomes a candidate)."""
    stored = ModelRegistry.for_settings(load_settings()).promote(version)
    console.print(f"{stored.version} is now the promoted {stored.kind} model")


def _data_end(settings: Settings, as_of: str | None) -> datetime | None:
    return as_of_instant(as_of, settings.default_timezone) if as_of else None


def _metrics_table(title: str, columns: dict[str, dict[str, Any]]) -> Table:
    view = Table(title=title)
    view.add_column("metric")
    for name in columns:
        view.add_column(name, justify="right")
    for key, label, shape in _METRICS:
        view.add_row(label, *[_cell(metrics.get(key), shape) for metrics in columns.values()])
    return view


def _list_cells(stored: ModelVersion) -> list[str]:
    metadata = stored.metadata
    metrics = metadata.get("metrics", {})
    data_end = metadata.get("training_window", {}).get("data_end", "")
    return [
        stored.version,
        stored.status.value,
        f"{stored.created_at:%Y-%m-%d %H:%M}",
        data_end[:10],
        _cell(metrics.get("rows"), "{:,}"),
        _cell(metrics.get("auc"), "{:.3f}"),
        _cell(metrics.get("baseline_recency_auc"), "{:.3f}"),
    ]


def _cell(value: object, shape: str) -> str:
    return "-" if value is None else shape.format(value)
