"""``perennial models train|evaluate|list|promote|backtest``: the models' life and honesty.

``train`` learns from the store's history and saves a candidate version;
``evaluate`` shows a version's out-of-time metrics and measures it again on the
latest complete outcome window of the store as it is now; ``promote`` makes a
version the one scoring uses; ``backtest`` measures every model against its
baselines on the demo and on CDNOW, in stores of its own, and writes the report.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
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

if TYPE_CHECKING:
    from perennial.models.backtest import StoreBacktest
    from perennial.models.backtest_report import Headline

__all__ = ["BacktestData", "models_app"]

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


class BacktestData(StrEnum):
    """What ``models backtest`` measures on."""

    DEMO = "demo"
    CDNOW = "cdnow"
    BOTH = "both"


_CDNOW_MASTER = Path("tests/data/CDNOW_master.txt")
_MAPPINGS = Path("examples/mappings")


@models_app.command("backtest")
def _backtest_command(
    data: Annotated[
        BacktestData,
        typer.Option(help="The generated demo (its ground truth is known), CDNOW, or both."),
    ] = BacktestData.BOTH,
    customers: Annotated[int, typer.Option(min=200, help="Demo customers to generate.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Demo random seed.")] = 7,
    out: Annotated[
        Path, typer.Option(help="The Markdown report; its plots go to the folder of its name.")
    ] = Path("docs/model-report.md"),
    home: Annotated[
        Path | None,
        typer.Option(
            help="Build the demo and CDNOW stores in this new folder and keep them; default a "
            "temporary folder, deleted afterwards. The configured store is never touched."
        ),
    ] = None,
    cdnow: Annotated[
        Path, typer.Option(help="The CDNOW log: the master (23,570 customers) or the sample.")
    ] = _CDNOW_MASTER,
    cdnow_mapping: Annotated[
        Path | None,
        typer.Option(help="Its mapping; default examples/mappings/cdnow(_sample).yaml by name."),
    ] = None,
) -> None:
    """Backtest churn, next-order and CLV models against baselines and write the report."""
    from perennial.models.backtest_report import headlines, write_model_report  # heavy: here

    started = perf_counter()
    if data is not BacktestData.DEMO and not cdnow.is_file():
        raise typer.BadParameter(f"{cdnow} is not a file", param_hint="--cdnow")
    with ExitStack() as stack:
        if home is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backtest-")))
        else:
            root = _empty_folder(home)
        with console.status("backtesting ...") as status:
            results = []
            if data is not BacktestData.CDNOW:
                results.append(_backtest_demo(root / "demo", customers, seed, status.update))
            if data is not BacktestData.DEMO:
                mapping = cdnow_mapping or _MAPPINGS / _cdnow_mapping_name(cdnow)
                results.append(_backtest_cdnow(root / "cdnow", cdnow, mapping, status.update))
        seconds = perf_counter() - started
        command = _command_line(data, customers, seed, out, cdnow)
        report = write_model_report(results, out, command=command, seconds=seconds)
    console.print(_headline_table(headlines(results)))
    console.print(
        f"wrote {report.markdown} and {len(report.plots)} plots in "
        f"{report.markdown.with_suffix('')} ({seconds:,.0f} s)",
        highlight=False,
    )


def _empty_folder(folder: Path) -> Path:
    """``--home`` must be new or empty: a store of another run would mix into this one."""
    if folder.exists() and any(folder.iterdir()):
        raise typer.BadParameter(f"{folder} is not empty; give a new folder", param_hint="--home")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _scratch_settings(root: Path, timezone: str) -> Settings:
    """Settings for a store under ``root`` only: every path is given, so no configured
    path (``PERENNIAL_WAREHOUSE_PATH``, perennial.toml) can point at the user's store."""
    return Settings(
        home=root,
        warehouse_path=root / "warehouse",
        operational_url=f"sqlite:///{root / 'perennial.db'}",
        serving_path=root / "serving.db",
        default_timezone=timezone,
    )


def _backtest_demo(
    root: Path, customers: int, seed: int, progress: Callable[[str], None]
) -> StoreBacktest:
    """Generate the demo and ingest it file by file, as ``perennial demo run`` does; measure."""
    import pyarrow.parquet as pq

    from perennial.demo import generate_demo
    from perennial.models.backtest import DEMO_TIMEZONE, backtest_store, demo_plan

    settings = _scratch_settings(root, DEMO_TIMEZONE)
    dataset = generate_demo(root / "sources", customers=customers, seed=seed, progress=progress)
    for demo_file in dataset.files:
        progress(f"ingesting {demo_file.path.name}")
        ingest_file(demo_file.path, settings, table=demo_file.table)
    plan = demo_plan(
        f"{customers:,} synthetic customers from `perennial.demo` (seed {seed}, "
        f"{dataset.end.year - 1}-01-01 .. {dataset.end}), ingested as `perennial demo run` "
        "does. The generator's ground truth gives each customer's latent dropout time."
    )
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        truth = pq.read_table(dataset.ground_truth)
        return backtest_store(backend, snapshot, plan, ground_truth=truth, progress=progress)


def _backtest_cdnow(
    root: Path, log: Path, mapping: Path, progress: Callable[[str], None]
) -> StoreBacktest:
    """Ingest the CDNOW log into a store of its own and measure at the published split."""
    from perennial.models.backtest import CDNOW_TIMEZONE, backtest_store, cdnow_plan

    settings = _scratch_settings(root, CDNOW_TIMEZONE)
    progress(f"ingesting {log.name}")
    ingested = ingest_file(log, settings, mapping=load_mapping(mapping))
    plan = cdnow_plan(
        f"`{log.name}` ({ingested.accepted:,} purchase rows through {mapping.name}): the "
        "customers who first bought at CDNOW in Q1 1997 and all their purchases to "
        "1998-06-30 (Fader, Hardie & Lee 2005). Calibration to 1997-09-30, holdout "
        "1997-10-01 .. 1998-06-30. CDNOW holds orders only, so the churn model's "
        "engagement features (logins, browsing, coupons, complaints) are empty and it "
        "learns from orders alone; churn over the whole holdout cannot train it (its "
        "split needs three non-overlapping horizons of history before T), so it is "
        "measured on a two-month horizon, with the baselines on both. The naive value "
        "forecast repeats the 273 days before T, here the whole calibration period with "
        "each customer's first purchase, so it must overshoot."
    )
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        return backtest_store(backend, snapshot, plan, progress=progress)


def _cdnow_mapping_name(log: Path) -> str:
    return "cdnow_sample.yaml" if "sample" in log.name.lower() else "cdnow.yaml"


def _command_line(data: BacktestData, customers: int, seed: int, out: Path, cdnow: Path) -> str:
    parts = ["perennial models backtest", f"--data {data.value}"]
    if data is not BacktestData.CDNOW:
        parts += [f"--customers {customers}", f"--seed {seed}"]
    if data is not BacktestData.DEMO and cdnow != _CDNOW_MASTER:
        parts.append(f"--cdnow {cdnow}")
    return " ".join([*parts, f"--out {out}"])


def _headline_table(rows: list[Headline]) -> Table:
    view = Table(title="Backtest: our models against the best baseline")
    for name in ("dataset", "question", "ours", "best baseline", "ours better"):
        view.add_column(name, justify="right" if name in ("ours", "best baseline") else "left")
    for row in rows:
        view.add_row(*row.cells())
    return view
