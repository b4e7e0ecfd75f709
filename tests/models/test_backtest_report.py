"""The backtest report: every section, valid PNG plots, verdicts computed from the numbers."""

from __future__ import annotations

import dataclasses
import re
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from matplotlib.image import imread

from perennial.models.backtest import (
    BtydHoldout,
    CalibrationBin,
    ChurnBacktest,
    ClvBacktest,
    ClvDecile,
    ScoreMetrics,
    StoreBacktest,
)
from perennial.models.backtest_report import (
    Headline,
    headlines,
    render_markdown,
    shortfalls,
    write_model_report,
)
from perennial.models.btyd_checks import HoldoutGroup
from perennial.models.next_order_backtest import NextOrderBacktest

CUTOFF = datetime(2025, 10, 1, tzinfo=UTC)
COMMAND = "perennial models backtest --data both --customers 30000 --out docs/model-report.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bins() -> tuple[CalibrationBin, ...]:
    return tuple(CalibrationBin(10, (k + 0.5) / 10, (k + 0.4) / 10) for k in range(10))


def _score(key: str, auc: float, *, brier: float | None = None) -> ScoreMetrics:
    return ScoreMetrics(
        key=key,
        label=f"{key} score",
        auc=auc,
        pr_auc=auc - 0.1,
        lift_top_decile=1.2,
        brier=brier,
        calibration=_bins() if brier is not None else (),
        latent_auc=auc + 0.01,
    )


def _churn(horizon: int, *, trained: bool, our_auc: float = 0.9) -> ChurnBacktest:
    ours = [_score("ours", our_auc, brier=0.10)] if trained else []
    return ChurnBacktest(
        cutoff=CUTOFF,
        horizon_days=horizon,
        definition="purchase",
        customers=100,
        churned=70,
        scores=(
            *ours,
            _score("recency", 0.85),
            _score("bgnbd_no_purchase", 0.88, brier=0.12),
        ),
        model_note="trained on cut-offs ..." if trained else "not trained: too little history",
        latent_dropped=40,
    )


def _result(dataset: str, *, trained: bool = True, our_auc: float = 0.9) -> StoreBacktest:
    groups = tuple(HoldoutGroup(n, n == 7, 10 + n, 5.0 * n + 1, 4.5 * n + 1.5) for n in range(8))
    return StoreBacktest(
        dataset=dataset,
        description=f"The {dataset} data.",
        cutoff=CUTOFF,
        horizon_days=90,
        customers=100,
        churn=(_churn(90, trained=trained, our_auc=our_auc),),
        btyd=(
            BtydHoldout("BG/NBD", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, groups),
            BtydHoldout("Pareto/NBD", {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}, groups),
        ),
        clv=ClvBacktest(
            customers=100,
            horizon_days=90,
            predicted_total=900.0,
            actual_total=1000.0,
            baseline_total=1300.0,
            model_mae=12.0,
            baseline_mae=15.0,
            model_top_decile_share=0.5,
            baseline_top_decile_share=0.45,
            deciles=tuple(ClvDecile(k + 1, 10, 90.0, 100.0, 130.0) for k in range(10)),
        ),
        next_order=NextOrderBacktest(
            cutoff=CUTOFF,
            horizon_days=90,
            repeat_customers=30,
            model_mae_days=15.0,
            last_interval_mae_days=40.0,
            last_interval_clipped_mae_days=25.0,
            simple_interval_mae_days=35.0,
            simple_interval_clipped_mae_days=22.0,
            coverage=0.82,
            nominal_coverage=0.8,
            first_time_customers=12,
            first_time_model_mae_days=19.0,
            first_time_simple_interval_mae_days=90.0,
        ),
        seconds=12.0,
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_report_has_every_section_and_starts_with_the_command(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "model-report.md"

    report = write_model_report([_result("demo"), _result("CDNOW")], out, command=COMMAND)

    text = out.read_text(encoding="utf-8")
    assert report.markdown == out
    assert text.splitlines()[0] == "# Model backtest"
    assert text.index(COMMAND) < text.index("## Summary")
    for heading in (
        "## Summary",
        "## Where our models do not beat a baseline",
        "## Method",
        "## demo",
        "## CDNOW",
        "### Churn: no paid order in 90 days",
        "Calibration by decile",
        "### Next order date",
        "### Customer value in 90 days",
        "### BG/NBD and Pareto/NBD: holdout purchases by calibration frequency",
    ):
        assert heading in text, heading
    assert "P(alive) is 1 for every customer without" in text.replace("\n  ", " ")
    assert "nan" not in text.lower().split()


def test_every_plot_the_report_links_is_a_valid_png_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "model-report.md"

    report = write_model_report([_result("demo"), _result("CDNOW")], out, command=COMMAND)

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text(encoding="utf-8"))
    assert sorted(tmp_path / link for link in links) == sorted(report.plots)
    assert len(report.plots) == 8  # per dataset: AUC, calibration, CLV deciles, BTYD holdout
    for plot in report.plots:
        assert plot.parent == tmp_path / "model-report"
        width, height = _png_size(plot)
        assert width >= 300 and height >= 300
        assert imread(plot).shape[:2] == (height, width)


def test_the_same_results_give_the_same_plot_bytes(tmp_path: Path) -> None:
    first = write_model_report([_result("demo")], tmp_path / "a.md", command=COMMAND)
    second = write_model_report([_result("demo")], tmp_path / "b.md", command=COMMAND)

    assert [p.read_bytes() for p in first.plots] == [p.read_bytes() for p in second.plots]


def test_a_model_that_loses_is_listed_among_the_shortfalls_and_one_that_wins_is_not() -> None:
    losing = _result("demo", our_auc=0.80)
    winning = _result("CDNOW", our_auc=0.95)

    listed = shortfalls([losing, winning])

    assert any(s.startswith("demo, churn in 90 d: AUC: ours 0.800 against 0.880") for s in listed)
    assert not any(s.startswith("CDNOW, churn in 90 d: AUC") for s in listed)
    # Brier is lower-is-better: ours 0.10 beats BG/NBD's 0.12 and the base rate's 0.21.
    assert not any("Brier" in s for s in listed)


def test_an_untrained_model_is_a_shortfall_and_shows_no_number() -> None:
    result = _result("CDNOW", trained=False)

    rows = [row for row in headlines([result]) if row.measure.startswith("churn")]
    text = render_markdown([result], command=COMMAND, plot_links={})

    assert [(row.ours, row.verdict) for row in rows] == [(None, "no")]
    assert "not trained" in rows[0].cells()
    assert any("could not be trained" in s for s in shortfalls([result]))
    assert "| **ours score**" not in text


def test_equal_numbers_as_printed_are_a_tie_not_a_win() -> None:
    tie = Headline("demo", "AUC", 0.9001, 0.9004, "recency", higher_is_better=True)
    lower_wins = Headline("demo", "MAE", 10.0, 12.0, "naive", higher_is_better=False)

    assert (tie.verdict, tie.ours_better) == ("tie", False)
    assert (lower_wins.verdict, lower_wins.ours_better) == ("yes", True)


def test_the_latent_truth_column_appears_only_where_the_truth_is_known() -> None:
    with_truth = render_markdown([_result("demo")], command=COMMAND, plot_links={})
    bare = _result("CDNOW")
    without = dataclasses.replace(bare.churn[0], latent_dropped=None)
    no_truth = render_markdown(
        [dataclasses.replace(bare, churn=(without,))], command=COMMAND, plot_links={}
    )

    assert "AUC vs latent dropout" in with_truth
    assert "AUC vs latent dropout" not in no_truth


def test_no_results_and_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no backtest results"):
        write_model_report([], tmp_path / "r.md", command=COMMAND)
    with pytest.raises(ValueError, match=r"ScoreMetrics\.auc is nan"):
        _score("ours", float("nan"))
    with pytest.raises(ValueError, match=r"ClvDecile\.actual_spend is inf"):
        ClvDecile(1, 10, 1.0, float("inf"), 1.0)
