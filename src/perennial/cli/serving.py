"""``perennial serving refresh``: rebuild the store the API reads customers and the board from."""

from __future__ import annotations

from typing import Annotated

import typer

from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.serving import ServingSummary, refresh_serving

__all__ = ["print_refresh", "refresh_and_report", "serving_app"]

serving_app = typer.Typer(
    help="The serving store: the API's indexed copy of profiles, timelines and the board.",
    no_args_is_help=True,
)


@serving_app.command("refresh")
def _refresh_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="The stage model the stored profiles were computed with (preset or YAML file).",
        ),
    ] = "seed000",
) -> None:
    """Rebuild the serving store from the warehouse's profiles, stage history and data.

    Readers keep the old store until the new one is complete (atomic rename).
    """
    settings = load_settings()
    refresh_and_report(settings, load_stage_model(resolve_model_path(model)))


def refresh_and_report(settings: Settings, stage_model: StageModel) -> ServingSummary:
    """Refresh with a status line per step, then print what was built."""
    with console.status("refreshing the serving store ...") as status:
        summary = refresh_serving(
            settings,
            stage_model,
            on_step=lambda step: status.update(f"refreshing the serving store: {step} ..."),
        )
    print_refresh(summary)
    return summary


def print_refresh(summary: ServingSummary) -> None:
    history = (
        f"stage history {summary.history[0]} to {summary.history[1]}"
        if summary.history
        else "no stage history"
    )
    console.print(
        f"serving store: {summary.customers:,} customers, {summary.timeline_items:,} timeline "
        f"items, {summary.transitions:,} transitions, {history} ({summary.model}); "
        f"{summary.bytes / 2**20:,.1f} MiB in {summary.seconds:,.1f} s -> {summary.path}"
    )
