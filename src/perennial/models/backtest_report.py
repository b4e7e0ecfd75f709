"""The backtest as a Markdown report with PNG plots: what a reviewer reads before trusting a model.

The report is generated, never edited: its first lines give the command that
regenerates it. Every verdict ("ours better: no") is computed from the numbers, so
the text cannot claim more than the run showed, and the section "Where our models
do not beat a baseline" lists every such case.

Plots use Matplotlib's object API (``Figure`` renders through the Agg canvas by
itself): no pyplot state, no display, no network, and PNG metadata without the
Matplotlib version, so the same results give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from perennial.models.backtest import (
    BtydHoldout,
    ChurnBacktest,
    ClvBacktest,
    ScoreMetrics,
    StoreBacktest,
)
from perennial.models.next_order_backtest import NextOrderBacktest

__all__ = [
    "Headline",
    "ModelReport",
    "headlines",
    "render_markdown",
    "shortfalls",
    "write_model_report",
]

_PNG_METADATA: dict[str, str | None] = {"Software": None}

_RANKING_MEASURES: tuple[tuple[str, Callable[[ScoreMetrics], float], str], ...] = (
    ("AUC", lambda score: score.auc, "{:.3f}"),
    ("PR-AUC", lambda score: score.pr_auc, "{:.3f}"),
    ("lift, top 10 %", lambda score: score.lift_top_decile, "{:.2f}"),
)
"""The churn rankings in the summary: name, how to read it, how to print it (higher is better)."""


@dataclass(frozen=True)
class Headline:
    """One question, our model's answer and the best baseline's, and which is better.

    ``ours`` is None when our model could not be trained for the question.
    """

    dataset: str
    measure: str
    ours: float | None
    baseline: float
    baseline_name: str
    higher_is_better: bool
    shape: str = "{:.3f}"

    @property
    def ours_better(self) -> bool:
        if self.ours is None or self.tied:
            return False
        return self.ours > self.baseline if self.higher_is_better else self.ours < self.baseline

    @property
    def tied(self) -> bool:
        """Equal as printed: a difference below the shown precision is no win."""
        return self.ours is not None and self.shape.format(self.ours) == self.shape.format(
            self.baseline
        )

    @property
    def verdict(self) -> str:
        return "tie" if self.tied else "yes" if self.ours_better else "no"

    def cells(self) -> list[str]:
        """Dataset, measure, ours, best baseline (named), and the verdict, as text."""
        ours = "not trained" if self.ours is None else self.shape.format(self.ours)
        baseline = f"{self.shape.format(self.baseline)} ({self.baseline_name})"
        return [self.dataset, self.measure, ours, baseline, self.verdict]


@dataclass(frozen=True)
class ModelReport:
    """What :func:`write_model_report` wrote."""

    markdown: Path
    plots: tuple[Path, ...]


def headlines(results: Sequence[StoreBacktest]) -> list[Headline]:
    """The summary table's rows: each of our models against its best baseline."""
    rows: list[Headline] = []
    for result in results:
        for churn in result.churn:
            rows += _churn_headlines(result.dataset, churn)
        rows += _next_order_headlines(result.dataset, result.next_order)
        rows += _clv_headlines(result.dataset, result.clv)
    return rows


def _churn_headlines(dataset: str, churn: ChurnBacktest) -> list[Headline]:
    model = churn.model
    what = f"churn in {churn.horizon_days} d"
    if model is None:
        best = max(churn.baselines, key=lambda score: score.auc)
        return [Headline(dataset, f"{what}: AUC", None, best.auc, best.label, True)]
    rows = []
    for measure, get, shape in _RANKING_MEASURES:
        best = max(churn.baselines, key=get)
        rows.append(
            Headline(dataset, f"{what}: {measure}", get(model), get(best), best.label, True, shape)
        )
    probabilities = [s for s in churn.baselines if s.brier is not None]
    base_rate_brier = churn.base_rate * (1.0 - churn.base_rate)
    best_brier = min(
        [(s.brier, s.label) for s in probabilities if s.brier is not None]
        + [(base_rate_brier, "the base rate for everyone")]
    )
    rows.append(
        Headline(
            dataset, f"{what}: Brier", model.brier, best_brier[0], best_brier[1], False, "{:.4f}"
        )
    )
    return rows


def _next_order_headlines(dataset: str, backtest: NextOrderBacktest) -> list[Headline]:
    rows = []
    repeat = {
        "last interval": backtest.last_interval_mae_days,
        "last interval, past dates moved to T": backtest.last_interval_clipped_mae_days,
        "own median interval": backtest.simple_interval_mae_days,
        "own median interval, moved to T": backtest.simple_interval_clipped_mae_days,
    }
    known = {name: value for name, value in repeat.items() if value is not None}
    if backtest.model_mae_days is not None and known:
        name = min(known, key=lambda key: known[key])
        rows.append(
            Headline(
                dataset,
                "next order: MAE, repeat buyers (days)",
                backtest.model_mae_days,
                known[name],
                name,
                False,
                "{:.1f}",
            )
        )
    first, simple = backtest.first_time_model_mae_days, backtest.first_time_simple_interval_mae_days
    if first is not None and simple is not None:
        rows.append(
            Headline(
                dataset,
                "next order: MAE, one-time buyers (days)",
                first,
                simple,
                "store's median interval",
                False,
                "{:.1f}",
            )
        )
    return rows


def _clv_headlines(dataset: str, clv: ClvBacktest) -> list[Headline]:
    naive = "spend of the last horizon"
    return [
        Headline(
            dataset,
            f"value in {clv.horizon_days} d: MAE per customer",
            clv.model_mae,
            clv.baseline_mae,
            naive,
            False,
            "{:,.2f}",
        ),
        Headline(
            dataset,
            f"value in {clv.horizon_days} d: total error",
            abs(clv.predicted_total / clv.actual_total - 1.0),
            abs(clv.baseline_total / clv.actual_total - 1.0),
            naive,
            False,
            "{:.1%}",
        ),
        Headline(
            dataset,
            f"value in {clv.horizon_days} d: spend share of the top 10 %",
            clv.model_top_decile_share,
            clv.baseline_top_decile_share,
            naive,
            True,
            "{:.1%}",
        ),
    ]


def shortfalls(results: Sequence[StoreBacktest]) -> list[str]:
    """One sentence per question where our model is not better than its best baseline
    (worse, tied as printed, or not trained)."""
    sentences = []
    for row in headlines(results):
        if row.ours_better:
            continue
        if row.ours is None:
            sentences.append(
                f"{row.dataset}, {row.measure}: our model could not be trained "
                f"(see the section); the best baseline, {row.baseline_name}, scores "
                f"{row.shape.format(row.baseline)}."
            )
            continue
        verdict = "ties with" if row.tied else "against"
        sentences.append(
            f"{row.dataset}, {row.measure}: ours {row.shape.format(row.ours)} {verdict} "
            f"{row.shape.format(row.baseline)} for {row.baseline_name}."
        )
    return sentences


def write_model_report(
    results: Sequence[StoreBacktest], out: Path, *, command: str, seconds: float | None = None
) -> ModelReport:
    """Write ``out`` (Markdown) and its plots into the folder ``out`` without its suffix.

    Links in the Markdown are relative, so the report and its folder move together.
    """
    if not results:
        raise ValueError("there are no backtest results to report")
    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    for result in results:
        plots.update(_plots_of(result, folder))
    links = {key: f"{folder.name}/{path.name}" for key, path in plots.items()}
    out.write_text(
        render_markdown(results, command=command, plot_links=links, seconds=seconds),
        encoding="utf-8",
    )
    return ModelReport(out, tuple(plots.values()))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _plots_of(result: StoreBacktest, folder: Path) -> dict[str, Path]:
    slug = _slug(result.dataset)
    plots = {}
    for churn in result.churn:
        key = f"{slug}-churn-{churn.horizon_days}d"
        plots[f"{key}-auc"] = _save(_auc_figure(churn), folder / f"{key}-auc.png")
        if any(s.calibration for s in churn.scores):
            path = folder / f"{key}-calibration.png"
            plots[f"{key}-calibration"] = _save(_calibration_figure(churn), path)
    plots[f"{slug}-clv"] = _save(_clv_figure(result.clv), folder / f"{slug}-clv-deciles.png")
    plots[f"{slug}-btyd"] = _save(_btyd_figure(result.btyd), folder / f"{slug}-btyd-holdout.png")
    return plots


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=100, metadata=_PNG_METADATA)
    return path


def _auc_figure(churn: ChurnBacktest) -> Figure:
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axes = figure.subplots()
    scores = list(reversed(churn.scores))
    colours = ["tab:blue" if s.key == "ours" else "tab:gray" for s in scores]
    axes.barh([s.label for s in scores], [s.auc for s in scores], color=colours)
    axes.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("AUC (0.5 = a coin)")
    axes.set_title(f"Churn in {churn.horizon_days} days: AUC by score")
    return figure


def _calibration_figure(churn: ChurnBacktest) -> Figure:
    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":", label="perfect")
    for score in churn.scores:
        if not score.calibration:
            continue
        axes.plot(
            [b.mean_predicted for b in score.calibration],
            [b.observed_rate for b in score.calibration],
            marker="o",
            label=score.label,
        )
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("mean predicted probability (decile)")
    axes.set_ylabel("observed churn rate")
    axes.set_title(f"Calibration, churn in {churn.horizon_days} days")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def _clv_figure(clv: ClvBacktest) -> Figure:
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    x = [d.decile for d in clv.deciles]
    axes.bar(
        [v - 0.27 for v in x],
        [d.predicted_spend for d in clv.deciles],
        0.27,
        label="predicted (BG/NBD x Gamma-Gamma)",
    )
    axes.bar(x, [d.actual_spend for d in clv.deciles], 0.27, label="actual")
    axes.bar(
        [v + 0.27 for v in x],
        [d.baseline_spend for d in clv.deciles],
        0.27,
        label="naive: spend of the last horizon",
        color="tab:gray",
    )
    axes.set_xticks(x)
    axes.set_xlabel("decile of predicted value (10 = highest)")
    axes.set_ylabel(f"total spend in {clv.horizon_days} days")
    axes.set_title("Customer value: predicted vs actual by decile")
    axes.legend(fontsize="small")
    return figure


def _btyd_figure(checks: Sequence[BtydHoldout]) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    if checks:
        groups = checks[0].groups
        x = list(range(len(groups)))
        axes.plot(x, [g.actual_mean for g in groups], marker="o", color="black", label="actual")
        for check in checks:
            axes.plot(x, [g.predicted_mean for g in check.groups], marker=".", label=check.model)
        axes.set_xticks(x, [g.label for g in groups])
    axes.set_xlabel("repeat purchases before the cut-off")
    axes.set_ylabel("mean purchases in the holdout")
    axes.set_title("Holdout purchases by calibration frequency")
    axes.legend(fontsize="small")
    return figure


# ---------------------------------------------------------------- Markdown


def render_markdown(
    results: Sequence[StoreBacktest],
    *,
    command: str,
    plot_links: dict[str, str],
    seconds: float | None = None,
) -> str:
    """The whole report; ``plot_links`` maps plot keys (see ``write_model_report``) to paths."""
    took = f" The run took {seconds:,.0f} s." if seconds is not None else ""
    lines = [
        "# Model backtest",
        "",
        "Generated by `perennial models backtest`; do not edit. Regenerate with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Datasets: {', '.join(f'{r.dataset} ({r.seconds:,.0f} s)' for r in results)}.{took}",
        "",
        "## Summary",
        "",
        "Each of our models against the best baseline on the same customers at the same",
        "cut-off (the baseline named is the best of several; sections below show all).",
        "",
        *_table(
            ["dataset", "question", "ours", "best baseline", "ours better"],
            [row.cells() for row in headlines(results)],
            "llrrl",
        ),
        "",
        "## Where our models do not beat a baseline",
        "",
        *(_bullets(shortfalls(results)) or ["None in this run."]),
        "",
        *_method(),
    ]
    for result in results:
        lines += _store_section(result, plot_links)
    return "\n".join(lines).rstrip() + "\n"


def _method() -> list[str]:
    return [
        "## Method",
        "",
        "- **Cut-off and outcome window.** Every model predicts as of a cut-off T from",
        "  data strictly before T; outcomes are read in [T, T + horizon), the churn",
        "  module's convention. The store must hold the whole window.",
        "- **No leakage.** Our churn model is trained by `train_churn_model(data_end=T)`:",
        "  its trees learn from cut-offs at least three horizons before T, its",
        "  calibrator from the cut-off two horizons before, and its early validation",
        "  from the window [T - horizon, T). The backtest checks that no outcome window",
        "  it used ends after T. BG/NBD, Pareto/NBD and Gamma-Gamma are fitted on the",
        "  summary as of T; next-order priors on the intervals before T.",
        "- **Same customers.** Churn scores are compared on the churn population at T",
        "  (customers with a paid order before T); CLV and BTYD checks on every",
        "  customer with a paid order before T.",
        "- **Churn baselines.** Recency: days since the last order. Lifecycle rule: the",
        "  seed000 stage as an ordinal risk (mature < growth < introduction < dormant <",
        "  churned). BG/NBD and Pareto/NBD: expected purchases in the horizon, negated",
        "  (fewer = riskier). BG/NBD P(no purchase in the horizon) = 1 - P(alive) +",
        "  P(alive) x ((alpha + T) / (alpha + T + t))^(r + x), a probability scored with",
        "  Brier like ours. Predicting the base rate p for everyone scores Brier p(1 - p).",
        "- **P(alive) is no churn score on its own.** Under BG/NBD a customer can only",
        "  drop out right after a purchase, so P(alive) is 1 for every customer without",
        "  a repeat purchase: 1 - P(alive) ranks all one-time buyers as the safest,",
        "  which is backwards where most of them never return. It is shown, labelled.",
        "- **Lift** is the churn rate in the top 10 % of scores over the base rate;",
        "  tied scores at the edge count pro rata, so rules with few values are fair.",
        "- **CLV** is BG/NBD expected purchases x Gamma-Gamma expected spend over exactly",
        "  the horizon, undiscounted, against the paid spend in the window; the naive",
        "  baseline repeats each customer's spend of the horizon before T.",
        "- **Next order**: mean absolute error in days between the predicted and the",
        "  actual next purchase day, over customers who bought in the window.",
        "",
    ]


def _store_section(result: StoreBacktest, plot_links: dict[str, str]) -> list[str]:
    slug = _slug(result.dataset)
    lines = [
        f"## {result.dataset}",
        "",
        result.description,
        "",
        f"Cut-off T = {result.cutoff.isoformat()}, outcome window {result.horizon_days} days; "
        f"{result.customers:,} customers with a paid order before T; measured in "
        f"{result.seconds:,.0f} s.",
        "",
    ]
    for churn in result.churn:
        lines += _churn_section(churn, plot_links, f"{slug}-churn-{churn.horizon_days}d")
    lines += _next_order_section(result.next_order)
    lines += _clv_section(result.clv, plot_links.get(f"{slug}-clv"))
    lines += _btyd_section(result.btyd, plot_links.get(f"{slug}-btyd"), result.horizon_days)
    return lines


def _churn_section(churn: ChurnBacktest, plot_links: dict[str, str], key: str) -> list[str]:
    latent = churn.latent_dropped is not None
    headers = ["score", "AUC", "PR-AUC", "lift top 10 %", "Brier"]
    if latent:
        headers.append("AUC vs latent dropout")
    rows = []
    for score in churn.scores:
        row = [
            f"**{score.label}**" if score.key == "ours" else score.label,
            f"{score.auc:.3f}",
            f"{score.pr_auc:.3f}",
            f"{score.lift_top_decile:.2f}",
            "-" if score.brier is None else f"{score.brier:.4f}",
        ]
        if latent:
            row.append("-" if score.latent_auc is None else f"{score.latent_auc:.3f}")
        rows.append(row)
    lines = [
        f"### Churn: no {churn.activity.replace('_', ' ')} in {churn.horizon_days} days "
        f"(definition {churn.definition!r})",
        "",
        f"{churn.customers:,} customers, {churn.churned:,} churned (base rate "
        f"{churn.base_rate:.1%}; predicting it for everyone scores Brier "
        f"{churn.base_rate * (1 - churn.base_rate):.4f}; no lift can exceed "
        f"1 / base rate = {1 / churn.base_rate:.2f}). Our model: {churn.model_note}.",
        "",
        *_table(headers, rows, "l" + "r" * (len(headers) - 1)),
        "",
    ]
    if latent:
        lines += [
            f"AUC vs latent dropout: the demo's ground truth says {churn.latent_dropped:,} of "
            "these customers had already left before T (their latent dropout time); this "
            "column ranks against that truth instead of the observed window.",
            "",
        ]
    if f"{key}-auc" in plot_links:
        lines += [f"![AUC by score]({plot_links[f'{key}-auc']})", ""]
    return lines + _calibration_lines(churn, plot_links.get(f"{key}-calibration"))


def _calibration_lines(churn: ChurnBacktest, link: str | None) -> list[str]:
    calibrated = [s for s in churn.scores if s.calibration]
    if not calibrated:
        return []
    headers = ["decile", "customers"]
    for score in calibrated:
        headers += [f"{score.label}: predicted", "observed"]
    rows = []
    for index in range(len(calibrated[0].calibration)):
        row = [str(index + 1), f"{calibrated[0].calibration[index].customers:,}"]
        for score in calibrated:
            b = score.calibration[index]
            row += [f"{b.mean_predicted:.3f}", f"{b.observed_rate:.3f}"]
        rows.append(row)
    lines = ["Calibration by decile of predicted probability (1 = lowest):", ""]
    lines += [*_table(headers, rows, "r" * len(headers)), ""]
    return lines + ([f"![Calibration]({link})", ""] if link else [])


def _next_order_section(backtest: NextOrderBacktest) -> list[str]:
    def days(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rows = [
        [
            "our model (empirical-Bayes interval, conditioned on the wait)",
            days(backtest.model_mae_days),
            days(backtest.first_time_model_mae_days),
        ],
        ["last purchase + last interval", days(backtest.last_interval_mae_days), "-"],
        [
            "last purchase + last interval, past dates moved to T",
            days(backtest.last_interval_clipped_mae_days),
            "-",
        ],
        [
            "feature layer's expected_next_order_at",
            days(backtest.simple_interval_mae_days),
            days(backtest.first_time_simple_interval_mae_days),
        ],
        [
            "feature layer's, past dates moved to T",
            days(backtest.simple_interval_clipped_mae_days),
            "-",
        ],
    ]
    coverage = "-" if backtest.coverage is None else f"{backtest.coverage:.1%}"
    return [
        "### Next order date",
        "",
        f"Mean absolute error in days over customers who bought in the window: "
        f"{backtest.repeat_customers:,} repeat buyers (two or more purchase days before T) "
        f"and {backtest.first_time_customers:,} one-time buyers. Our 80 % window held "
        f"{coverage} of the repeat buyers' actual days (nominal "
        f"{backtest.nominal_coverage:.0%}; only buyers within the window count, which "
        "favours early misses).",
        "",
        *_table(["predictor", "repeat buyers", "one-time buyers"], rows, "lrr"),
        "",
    ]


def _clv_section(clv: ClvBacktest, link: str | None) -> list[str]:
    rows = [
        [
            str(d.decile),
            f"{d.customers:,}",
            f"{d.predicted_spend:,.0f}",
            f"{d.actual_spend:,.0f}",
            f"{d.baseline_spend:,.0f}",
        ]
        for d in clv.deciles
    ]
    rows.append(
        [
            "all",
            f"{clv.customers:,}",
            f"**{clv.predicted_total:,.0f}**",
            f"**{clv.actual_total:,.0f}**",
            f"{clv.baseline_total:,.0f}",
        ]
    )
    lines = [
        f"### Customer value in {clv.horizon_days} days",
        "",
        f"Predicted {clv.predicted_total:,.0f} in total against {clv.actual_total:,.0f} "
        f"actual ({clv.predicted_total / clv.actual_total - 1:+.1%}); the naive forecast "
        f"said {clv.baseline_total:,.0f} ({clv.baseline_total / clv.actual_total - 1:+.1%}). "
        f"Mean absolute error per customer: {clv.model_mae:,.2f} (ours) vs "
        f"{clv.baseline_mae:,.2f} (naive). The top 10 % by our prediction made "
        f"{clv.model_top_decile_share:.1%} of the actual spend (naive: "
        f"{clv.baseline_top_decile_share:.1%}).",
        "",
        *_table(
            ["decile of prediction", "customers", "predicted", "actual", "naive"], rows, "rrrrr"
        ),
        "",
    ]
    return lines + ([f"![CLV by decile]({link})", ""] if link else [])


def _btyd_section(checks: Sequence[BtydHoldout], link: str | None, horizon: int) -> list[str]:
    if not checks:
        return []
    headers = ["repeat purchases before T", "customers", "actual mean"]
    headers += [f"{c.model} mean" for c in checks]
    rows = []
    for index, group in enumerate(checks[0].groups):
        row = [group.label, f"{group.customers:,}", f"{group.actual_mean:.3f}"]
        row += [f"{c.groups[index].predicted_mean:.3f}" for c in checks]
        rows.append(row)
    totals = "; ".join(
        f"{c.model} {c.predicted_total:,.0f} "
        f"({', '.join(f'{k} = {v:.4g}' for k, v in c.parameters.items())})"
        for c in checks
    )
    lines = [
        "### BG/NBD and Pareto/NBD: holdout purchases by calibration frequency",
        "",
        f"Repeat purchase days in the {horizon}-day window: {checks[0].actual_total:,.0f} "
        f"actual; predicted: {totals}.",
        "",
        *_table(headers, rows, "r" * len(headers)),
        "",
    ]
    return lines + ([f"![Holdout by frequency]({link})", ""] if link else [])


def _table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _bullets(sentences: list[str]) -> list[str]:
    return [f"- {sentence}" for sentence in sentences]
