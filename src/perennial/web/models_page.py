"""The model page (模型): how good the promoted churn model is, what it learnt from, and
every stored version: ``/models``.

Every number is the answer of ``GET /v1/models`` or ``GET /v1/models/{version}``,
obtained by calling those endpoints' functions, so the page and a program reading
the API agree. Metrics are shown next to what they beat: AUC against the recency
rule, PR-AUC against the churn rate (a random ranking's score), Brier against
always predicting the churn rate. With no model yet the page says which commands
make one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Role
from perennial.api.model_views import (
    ModelDetail,
    ModelFeature,
    ModelList,
    ModelSummary,
    ValidationMetrics,
)
from perennial.api.routes.models import list_models, model_detail
from perennial.api.state import app_state
from perennial.models.churn_config import PAID_ORDER, ChurnConfig
from perennial.models.registry import CHURN_KIND
from perennial.web.charts import calibration_figure
from perennial.web.formatting import Formatter
from perennial.web.i18n import CATALOGUE, language_of, translate
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = [
    "FeatureRow",
    "MetricCard",
    "VersionRow",
    "metric_cards",
    "models_page",
    "router",
]

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Translate = Callable[..., str]
Tone = Literal["good", "bad", "neutral"]
_MISSING = "—"


@dataclass(frozen=True, slots=True)
class MetricCard:
    key: str
    label: str
    value: str
    note: str
    """What the value is compared with (the baseline), in words."""
    tone: Tone
    """``good`` when the model beats that baseline."""


@dataclass(frozen=True, slots=True)
class FeatureRow:
    name: str
    label: str
    missing_share: str
    reference: str


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: str
    status: str
    promoted: bool
    created_at: str
    data_end: str
    definition: str
    rows: str
    auc: str
    recency_auc: str
    brier: str


@router.get("/models")
def models_page(request: Request, viewer: Reader) -> Response:
    language = language_of(request)
    t = partial(translate, language)
    fmt = Formatter(language, app_state(request).settings.default_timezone)
    listed = list_models(viewer.principal, request)
    promoted = listed.promoted.get(CHURN_KIND)
    detail = model_detail(viewer.principal, request, promoted) if promoted else None
    values: dict[str, Any] = {
        "versions": [_version_row(item, fmt, t, listed) for item in reversed(listed.items)],
        "latest_churn": _latest_churn(listed),
        "model": detail,
        **(_model_parts(detail, fmt, t) if detail is not None else {}),
    }
    return render_page(request, "models.html", viewer=viewer, title_key="models.title", **values)


def metric_cards(metrics: ValidationMetrics, fmt: Formatter, t: Translate) -> list[MetricCard]:
    """AUC, PR-AUC, Brier and top-decile lift, each beside the baseline it has to beat."""
    rate = metrics.churn_rate
    base_brier = rate * (1 - rate)
    return [
        MetricCard(
            "auc",
            t("models.auc"),
            _fixed(metrics.auc, 3),
            t(
                "models.auc_note",
                recency=_fixed(metrics.baseline_recency_auc, 3),
                rhythm=_fixed(metrics.baseline_rhythm_auc, 3),
            ),
            _tone(metrics.auc - metrics.baseline_recency_auc),
        ),
        MetricCard(
            "pr_auc",
            t("models.pr_auc"),
            _fixed(metrics.pr_auc, 3),
            t("models.pr_auc_note", rate=_fixed(rate, 3)),
            _tone(metrics.pr_auc - rate),
        ),
        MetricCard(
            "brier",
            t("models.brier"),
            _fixed(metrics.brier, 4),
            t("models.brier_note", base=_fixed(base_brier, 4)),
            _tone(base_brier - metrics.brier),
        ),
        MetricCard(
            "lift",
            t("models.lift"),
            t("models.lift_value", lift=_fixed(metrics.lift_top_decile, 2)),
            t(
                "models.lift_note",
                top=fmt.percent(metrics.lift_top_decile * rate),
                rate=fmt.percent(rate),
            ),
            _tone(metrics.lift_top_decile - 1),
        ),
    ]


def _model_parts(detail: ModelDetail, fmt: Formatter, t: Translate) -> dict[str, Any]:
    """What the page shows of the promoted model: cards, definition, window, features, chart."""
    curve = detail.calibration_curve
    return {
        "cards": metric_cards(detail.metrics, fmt, t) if detail.metrics else [],
        "definition": _definition(detail.config, fmt, t) if detail.config else [],
        "window": _window(detail, fmt, t),
        "features": [_feature_row(feature, fmt) for feature in detail.features],
        "calibration_chart": calibration_figure(curve, fmt, t) if curve else None,
    }


def _definition(config: ChurnConfig, fmt: Formatter, t: Translate) -> list[tuple[str, str]]:
    """The churn definition as label and sentence pairs: name, churned means, population."""
    activity = config.label.activity
    key = "models.paid_order" if activity == PAID_ORDER else f"event.{activity}"
    activity_label = _label_or(fmt.language, key, activity)
    population = config.population
    orders = population.min_paid_orders
    everyone = t("models.population_everyone")
    who = [t("models.population_orders", orders=orders) if orders else everyone]
    if population.min_tenure_days:
        who.append(t("models.population_tenure", days=fmt.count(population.min_tenure_days)))
    if population.active_within_days is not None:
        days = population.active_within_days
        who.append(t("models.population_active", activity=activity_label, days=days))
    horizon = config.label.horizon_days
    return [
        (t("models.definition_name"), config.name),
        (
            t("models.churned_means"),
            t("models.churned_when", activity=activity_label, days=horizon),
        ),
        (t("models.population"), t("models.list_separator").join(who)),
    ]


def _window(detail: ModelDetail, fmt: Formatter, t: Translate) -> list[tuple[str, str]]:
    """Training window, the cut-offs of each split, what validation counted, the calibrator."""
    facts = []
    if detail.training_window is not None:
        first, end = detail.training_window.first_cutoff, detail.training_window.data_end
        span = t("models.window_range", start=fmt.date(first), end=fmt.date(end))
        facts.append((t("models.training_window"), span))
    if detail.cutoffs is not None:
        cutoffs = detail.cutoffs
        facts += [
            (t("models.training_cutoffs"), ", ".join(fmt.date(c) for c in cutoffs.training)),
            (t("models.calibration_cutoff"), fmt.date(cutoffs.calibration)),
            (t("models.validation_cutoff"), fmt.date(cutoffs.validation)),
        ]
    if detail.metrics is not None:
        rows, rate = fmt.count(detail.metrics.rows), fmt.percent(detail.metrics.churn_rate)
        facts.append((t("models.validation_rows"), t("models.rows_and_rate", rows=rows, rate=rate)))
    if detail.calibration_method is not None:
        method = detail.calibration_method
        label = _label_or(fmt.language, f"models.method.{method}", method)
        facts.append((t("models.calibration_method"), label))
    return facts


def _feature_row(feature: ModelFeature, fmt: Formatter) -> FeatureRow:
    """A feature with its registry label, else the catalogue's (derived ones), else its name."""
    label = feature.label_zh if fmt.language == "zh-CN" else feature.label_en
    missing, reference = feature.missing_share, feature.reference
    return FeatureRow(
        name=feature.name,
        label=label or _label_or(fmt.language, f"models.feature.{feature.name}", feature.name),
        missing_share=_MISSING if missing is None else fmt.percent(missing),
        reference=_MISSING if reference is None else fmt.count(round(reference, 2)),
    )


def _version_row(item: ModelSummary, fmt: Formatter, t: Translate, listed: ModelList) -> VersionRow:
    metrics = item.metrics
    window = item.training_window
    return VersionRow(
        version=item.version,
        status=t(f"models.status.{item.status.value}"),
        promoted=listed.promoted.get(item.kind) == item.version,
        created_at=fmt.datetime(item.created_at),
        data_end=fmt.date(window.data_end) if window else _MISSING,
        definition=item.definition or item.kind,
        rows=fmt.count(metrics.rows) if metrics else _MISSING,
        auc=_fixed(metrics.auc, 3) if metrics else _MISSING,
        recency_auc=_fixed(metrics.baseline_recency_auc, 3) if metrics else _MISSING,
        brier=_fixed(metrics.brier, 4) if metrics else _MISSING,
    )


def _latest_churn(listed: ModelList) -> str | None:
    """The newest churn version (the one to suggest promoting when none is)."""
    churn = [item.version for item in listed.items if item.kind == CHURN_KIND]
    return churn[-1] if churn else None


def _label_or(language: str, key: str, fallback: str) -> str:
    """The catalogue's label ``key``, or ``fallback`` for values no label was written for
    (a shop's own event types, a calibration method added later, a caller's extra feature)."""
    labels = CATALOGUE[language]
    return labels[key] if key in labels else fallback


def _fixed(value: float, places: int) -> str:
    """Scores are the same in both languages: ``0.918``."""
    return f"{value:.{places}f}"


def _tone(margin: float) -> Tone:
    if margin > 0:
        return "good"
    return "bad" if margin < 0 else "neutral"
