"""plotly.js figures (data and layout as JSON), built on the server from the API's answers.

Pages embed each figure in a ``<script type="application/json">`` block next to
its container, and ``static/charts.js`` draws every one of them: no inline script
runs, so the Content-Security-Policy stays ``script-src 'self'``. Figures hold
numbers and labels only (never a customer's data); every text plotly shows is
passed through :func:`plain` (plotly reads a few HTML-like tags in labels) and
every hover text is formatted here, in the viewer's language (万/亿 in Chinese).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from perennial.api.customer_views import StageChange
from perennial.api.model_views import CalibrationBin
from perennial.api.routes.lifecycle import DistributionView, FlowsView, RfmGridView, RfmSegmentView
from perennial.lifecycle.rfm_segments import DEFAULT_SEGMENTS, NO_ORDERS_KEY, SCORE_LEVELS
from perennial.web.formatting import Formatter
from perennial.web.stage_display import StageStyles

__all__ = [
    "Figure",
    "calibration_figure",
    "cell_segments",
    "distribution_figure",
    "flows_figure",
    "plain",
    "rfm_figure",
    "stage_timeline_figure",
]

Figure = dict[str, Any]
"""``{"data": [...], "layout": {...}}`` as ``Plotly.newPlot`` takes them."""
Translate = Callable[..., str]

_FONT = (
    '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", '
    "system-ui, sans-serif"
)
_INK = "#1f2933"
_GRID = "#d9e2ec"
_HEAT = [[0.0, "#f1f8f5"], [0.5, "#7fd0ae"], [1.0, "#0b5a42"]]
_TICKS = {"zh-CN": "%-m月%-d日", "en": "%-d %b"}
_EDGE = 0.001
_GAP = 0.03
_HOVER_DAYS = {"zh-CN": "%Y年%-m月%-d日", "en": "%-d %b %Y"}


def plain(text: str) -> str:
    """``text`` as plotly should show it: its HTML-like tags and entities made literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "font": {"family": _FONT, "size": 15, "color": _INK},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 64, "r": 24, "t": 24, "b": 48},
        **extra,
    }


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _date_axis(language: str) -> dict[str, Any]:
    return {
        "type": "date",
        "tickformat": _TICKS.get(language, _TICKS["en"]),
        "hoverformat": _HOVER_DAYS.get(language, _HOVER_DAYS["en"]),
        "gridcolor": _GRID,
    }


def distribution_figure(view: DistributionView, styles: StageStyles, fmt: Formatter) -> Figure:
    """Customers per stage per day, stacked (the stages in life order, bottom up)."""
    days = [day.isoformat() for day in view.days]
    series = {item.stage: item for item in view.series}
    traces = []
    for key in styles.ordered(series):
        style = styles[key]
        counts = series[key].customers
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": plain(style.label),
                "x": days,
                "y": counts,
                "stackgroup": "stages",
                "line": {"color": style.colour, "width": 1.5},
                "fillcolor": _rgba(style.colour, 0.7),
                "customdata": [fmt.count(count) for count in counts],
                "hovertemplate": f"{plain(style.label)}: %{{customdata}}<extra></extra>",
            }
        )
    layout = _layout(
        hovermode="x unified",
        xaxis=_date_axis(fmt.language),
        yaxis={"tickformat": ",d", "gridcolor": _GRID, "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
    )
    return {"data": traces, "layout": layout}


def flows_figure(view: FlowsView, styles: StageStyles, fmt: Formatter, t: Translate) -> Figure:
    """A Sankey from the stages on ``view.start`` (left) to those on ``view.end`` (right)."""
    sources = styles.ordered({flow.from_stage for flow in view.flows})
    targets = styles.ordered({flow.to_stage for flow in view.flows})
    left = {key: index for index, key in enumerate(sources)}
    right = {key: len(sources) + index for index, key in enumerate(targets)}
    totals: defaultdict[int, int] = defaultdict(int)
    for flow in view.flows:
        totals[left[flow.from_stage]] += flow.customers
        totals[right[flow.to_stage]] += flow.customers
    keys = [*sources, *targets]
    heights = [totals[index] for index in range(len(keys))]
    node = {
        "label": [
            f"{plain(styles.label(key))} {fmt.count(totals[index])}"
            for index, key in enumerate(keys)
        ],
        "color": [styles[key].colour for key in keys],
        "pad": 18,
        "thickness": 22,
        "line": {"width": 0},
        "hovertemplate": "%{label}<extra></extra>",
        # fixed positions keep both columns in life order (plotly would reorder them)
        "x": [_EDGE] * len(sources) + [1 - _EDGE] * len(targets),
        "y": _column(heights[: len(sources)]) + _column(heights[len(sources) :]),
    }
    link = {
        "source": [left[flow.from_stage] for flow in view.flows],
        "target": [right[flow.to_stage] for flow in view.flows],
        "value": [flow.customers for flow in view.flows],
        "color": [_rgba(styles[flow.from_stage].colour, 0.35) for flow in view.flows],
        "customdata": [fmt.count(flow.customers) for flow in view.flows],
        "hovertemplate": (
            "%{source.label} → %{target.label}<br>"
            + plain(t("board.customers_moved"))
            + ": %{customdata}<extra></extra>"
        ),
    }
    annotations = [
        _caption(fmt.date(view.start), 0.0, "left"),
        _caption(fmt.date(view.end), 1.0, "right"),
    ]
    trace = {"type": "sankey", "arrangement": "fixed", "node": node, "link": link}
    layout = _layout(annotations=annotations, margin={"l": 16, "r": 16, "t": 40, "b": 16})
    return {"data": [trace], "layout": layout}


def _column(heights: Sequence[int]) -> list[float]:
    """Centres of nodes stacked top to bottom with ``heights``, a small gap between them."""
    gaps = _GAP * (len(heights) - 1)
    scale = (1 - 2 * _EDGE - gaps) / max(sum(heights), 1)
    centres, top = [], _EDGE
    for height in heights:
        centres.append(round(top + height * scale / 2, 4))
        top += height * scale + _GAP
    return centres


def _caption(text: str, x: float, anchor: str) -> dict[str, Any]:
    return {
        "text": plain(text),
        "x": x,
        "y": 1.08,
        "xref": "paper",
        "yref": "paper",
        "xanchor": anchor,
        "showarrow": False,
        "font": {"size": 15, "color": "#616e7c"},
    }


def cell_segments(r: int, f: int, segments: Sequence[RfmSegmentView], language: str) -> str:
    """The named segments customers of the R x F cell can be in (their M score decides).

    Segments are boxes on the R x FM grid (see :mod:`perennial.lifecycle.rfm_segments`),
    so one R x F cell may hold several. Known for the shipped segment set only: the
    serving store keeps a custom set's counts and labels but not its boxes (then ``—``).
    """
    stored = {segment.segment: segment for segment in segments if segment.segment != NO_ORDERS_KEY}
    if not stored or not set(stored) <= set(DEFAULT_SEGMENTS):
        return "—"
    names = [
        stored[key].label_zh if language == "zh-CN" else stored[key].label_en
        for key, box in DEFAULT_SEGMENTS.items()
        if key in stored and any(box.covers(r, f, m) for m in SCORE_LEVELS)
    ]
    return " / ".join(plain(name) for name in names) or "—"


def rfm_figure(view: RfmGridView, fmt: Formatter, t: Translate, currency: str) -> Figure:
    """Customers per R (rows, 5 at the top) x F (columns) cell; hover adds revenue and segments."""
    cells = {(cell.r, cell.f): cell for cell in view.cells}
    levels = list(SCORE_LEVELS)
    z, text, hover = [], [], []
    for r in levels:
        row = [cells.get((r, f)) for f in levels]
        z.append([cell.customers if cell else 0 for cell in row])
        text.append([fmt.count(cell.customers if cell else 0) for cell in row])
        hover.append(
            [
                [
                    fmt.money(cell.revenue if cell else 0, currency),
                    cell_segments(r, f, view.segments, fmt.language),
                ]
                for f, cell in zip(levels, row, strict=True)
            ]
        )
    trace = {
        "type": "heatmap",
        "x": levels,
        "y": levels,
        "z": z,
        "text": text,
        "customdata": hover,
        "texttemplate": "%{text}",
        "textfont": {"size": 17},
        "colorscale": _HEAT,
        "showscale": False,
        "xgap": 3,
        "ygap": 3,
        "hovertemplate": (
            "R %{y} · F %{x}<br>"
            + plain(t("rfm.customers"))
            + ": %{text}<br>"
            + plain(t("rfm.revenue"))
            + ": %{customdata[0]}<br>"
            + plain(t("rfm.segments"))
            + ": %{customdata[1]}<extra></extra>"
        ),
    }
    axis = {"tickvals": levels, "fixedrange": True, "showgrid": False, "zeroline": False}
    layout = _layout(
        xaxis={**axis, "title": {"text": plain(t("rfm.f_axis"))}, "ticktext": _ticks("F")},
        yaxis={**axis, "title": {"text": plain(t("rfm.r_axis"))}, "ticktext": _ticks("R")},
    )
    return {"data": [trace], "layout": layout}


def _ticks(letter: str) -> list[str]:
    return [f"{letter}{level}" for level in SCORE_LEVELS]


def stage_timeline_figure(
    history: Sequence[StageChange],
    current: str | None,
    styles: StageStyles,
    *,
    first_day: date | None,
    until: date,
    language: str,
) -> Figure | None:
    """A customer's stage over time as steps, from the history's first day to ``until``.

    ``history`` is newest first (as the 360 lists it); none: no figure.
    """
    if not history:
        return None
    changes = sorted(history, key=lambda change: change.day)
    points: list[tuple[date, str | None]] = []
    earliest = changes[0]
    if earliest.from_stage is not None and first_day is not None and first_day < earliest.day:
        points.append((first_day, earliest.from_stage))
    points += [(change.day, change.to_stage) for change in changes]
    if until > points[-1][0]:
        points.append((until, current))
    keys = [key for _, key in points]
    shown = styles.ordered({styles[key].key for key in keys})
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "x": [day.isoformat() for day, _ in points],
        "y": [plain(styles.label(key)) for key in keys],
        "line": {"shape": "hv", "color": "#616e7c", "width": 2},
        "marker": {"size": 11, "color": [styles[key].colour for key in keys]},
        "hovertemplate": "%{x}: %{y}<extra></extra>",
    }
    layout = _layout(
        xaxis=_date_axis(language),
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": [plain(styles.label(key)) for key in shown],
            "gridcolor": _GRID,
        },
        margin={"l": 96, "r": 24, "t": 16, "b": 40},
        showlegend=False,
    )
    return {"data": [trace], "layout": layout}


def calibration_figure(curve: Sequence[CalibrationBin], fmt: Formatter, t: Translate) -> Figure:
    """Observed churn rate against mean predicted probability per bin, and the diagonal a
    perfectly calibrated model would follow; a marker's area grows with its bin's customers."""
    largest = max((entry.count for entry in curve), default=1)
    model = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": plain(t("models.chart_model")),
        "x": [entry.mean_predicted for entry in curve],
        "y": [entry.observed_rate for entry in curve],
        "line": {"color": _INK, "width": 2},
        "marker": {
            "color": "#127c5b",
            "size": [8 + 14 * (entry.count / largest) ** 0.5 for entry in curve],
        },
        "customdata": [
            [
                fmt.percent(entry.mean_predicted),
                fmt.percent(entry.observed_rate),
                fmt.count(entry.count),
            ]
            for entry in curve
        ],
        "hovertemplate": (
            plain(t("models.chart_predicted"))
            + ": %{customdata[0]}<br>"
            + plain(t("models.chart_observed"))
            + ": %{customdata[1]}<br>"
            + plain(t("models.chart_customers"))
            + ": %{customdata[2]}<extra></extra>"
        ),
    }
    diagonal = {
        "type": "scatter",
        "mode": "lines",
        "name": plain(t("models.chart_ideal")),
        "x": [0, 1],
        "y": [0, 1],
        "line": {"color": "#9aa5b1", "width": 1.5, "dash": "dash"},
        "hoverinfo": "skip",
    }
    axis = {"range": [-0.02, 1.02], "tickformat": ".0%", "gridcolor": _GRID, "zeroline": False}
    layout = _layout(
        xaxis={**axis, "title": {"text": plain(t("models.chart_predicted"))}},
        yaxis={**axis, "title": {"text": plain(t("models.chart_observed"))}},
        legend={"x": 0.02, "y": 0.98, "xanchor": "left", "yanchor": "top"},
        hovermode="closest",
    )
    return {"data": [model, diagonal], "layout": layout}
