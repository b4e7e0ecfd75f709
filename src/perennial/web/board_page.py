"""The lifecycle health board (每日晨会健康度看板): ``/board``.

Every number is the answer of the ``/v1/lifecycle`` endpoint of the same name,
computed by calling it (not a copy of its logic), so what the room sees is what
a program reading the API gets. The board reads precomputed tables only (see
:mod:`perennial.serving.board`): a few milliseconds on the 50 k-customer demo.
Choices come as query parameters of a plain GET form (``period``, ``flow_start``,
``flow_end``); a value that cannot be used is named in a message and the default
shown instead, rather than a bare error page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError
from perennial.api.routes.lifecycle import (
    FlowsView,
    RfmGridView,
    distribution,
    flows,
    kpis,
    rfm_grid,
)
from perennial.api.serving import Serving
from perennial.api.state import app_state
from perennial.lifecycle.flows import Flow, top_movers
from perennial.serving.board import Board
from perennial.serving.store import ServingStore
from perennial.web.board_data import board_or_none, is_unavailable, no_data_page, styles_for
from perennial.web.charts import distribution_figure, flows_figure, rfm_figure
from perennial.web.formatting import Formatter
from perennial.web.i18n import language_of, translate
from perennial.web.kpi_cards import kpi_cards
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page
from perennial.web.stage_display import StageStyles

__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "MOVERS",
    "PERIODS",
    "Mover",
    "SegmentRow",
    "board_page",
    "router",
]

PERIODS = (7, 30, 90)
"""The KPI periods the board offers (any 1-366 works in the URL)."""
DEFAULT_PERIOD_DAYS = 30
MOVERS = 5
_MAX_PERIOD = 366

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Translate = Callable[..., str]


@dataclass(frozen=True, slots=True)
class Mover:
    from_label: str
    from_colour: str
    to_label: str
    to_colour: str
    customers: str
    to_stage: str | None
    """The stage key to list the customers of (none for ``(no stage)``)."""


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: str
    label: str
    customers: str
    share: str
    revenue: str


@router.get("/board")
def board_page(
    request: Request,
    viewer: Reader,
    serving: Serving,
    period: str | None = None,
    flow_start: str | None = None,
    flow_end: str | None = None,
) -> Response:
    board = board_or_none(serving)
    try:
        if board is not None:
            return _board_page(request, viewer, serving, board, (period, flow_start, flow_end))
    except ApiError as error:
        if not is_unavailable(error):
            raise
    return no_data_page(request, viewer, "board.title")


def _board_page(
    request: Request,
    viewer: Viewer,
    serving: ServingStore,
    board: Board,
    chosen: tuple[str | None, str | None, str | None],
) -> Response:
    period, flow_start, flow_end = chosen
    language = language_of(request)
    t = partial(translate, language)
    fmt = Formatter(language, app_state(request).settings.default_timezone)
    styles = styles_for(board, request)
    principal = viewer.principal
    errors: list[str] = []
    period_days = _period(period, errors, t)
    kpi_view = kpis(principal, serving, period_days=period_days)
    rfm_view = rfm_grid(principal, serving)
    currency = kpi_view.currency or "CNY"
    values: dict[str, Any] = {
        "board": board,
        "period_days": period_days,
        "periods": PERIODS,
        "cards": kpi_cards(kpi_view, fmt, t, styles),
        "kpi_view": kpi_view,
        "rfm_chart": rfm_figure(rfm_view, fmt, t, currency),
        "segments": _segment_rows(rfm_view, fmt, language, currency),
        "rfm_customers": fmt.count(rfm_view.customers),
        **_history_parts(board, serving, principal, styles, fmt, (flow_start, flow_end), errors),
    }
    return render_page(
        request, "board.html", viewer=viewer, title_key="board.title", errors=errors, **values
    )


def _history_parts(
    board: Board,
    serving: ServingStore,
    principal: Principal,
    styles: StageStyles,
    fmt: Formatter,
    chosen: tuple[str | None, str | None],
    errors: list[str],
) -> dict[str, Any]:
    """The distribution chart, the flows and the top movers (all need the stage history)."""
    t = partial(translate, fmt.language)
    if board.history is None:
        return {"distribution_chart": None, "flows_view": None, "flows_chart": None, "movers": []}
    days = distribution(principal, serving, start=None, end=None)
    start, end = _flow_days(chosen, errors, t)
    try:
        flows_view = flows(principal, serving, start=start, end=end)
    except ApiError as error:
        if error.status >= 500:
            raise
        first, last = board.history
        errors.append(t("board.flow_range", first=fmt.date(first), last=fmt.date(last)))
        flows_view = flows(principal, serving, start=None, end=None)
    return {
        "distribution_chart": distribution_figure(days, styles, fmt) if days.days else None,
        "flows_view": flows_view,
        "flows_chart": flows_figure(flows_view, styles, fmt, t) if flows_view.flows else None,
        "movers": _movers(flows_view, styles, fmt),
    }


def _period(text: str | None, errors: list[str], t: Translate) -> int:
    if not text:
        return DEFAULT_PERIOD_DAYS
    if text.isdigit() and 1 <= int(text) <= _MAX_PERIOD:
        return int(text)
    errors.append(t("board.bad_period", maximum=_MAX_PERIOD))
    return DEFAULT_PERIOD_DAYS


def _flow_days(
    chosen: tuple[str | None, str | None], errors: list[str], t: Translate
) -> tuple[date | None, date | None]:
    """The two chosen days; both default (``None``) when either is not a date."""
    try:
        start, end = (date.fromisoformat(text) if text else None for text in chosen)
    except ValueError:
        errors.append(t("board.bad_date"))
        return None, None
    return start, end


def _movers(view: FlowsView, styles: StageStyles, fmt: Formatter) -> list[Mover]:
    moved = [Flow(flow.from_stage, flow.to_stage, flow.customers) for flow in view.flows]
    known = {style.key for style in styles.stages}
    return [
        Mover(
            from_label=styles.label(flow.from_stage),
            from_colour=styles[flow.from_stage].colour,
            to_label=styles.label(flow.to_stage),
            to_colour=styles[flow.to_stage].colour,
            customers=fmt.count(flow.customers),
            to_stage=flow.to_stage if flow.to_stage in known else None,
        )
        for flow in top_movers(moved, MOVERS)
    ]


def _segment_rows(
    view: RfmGridView, fmt: Formatter, language: str, currency: str
) -> list[SegmentRow]:
    return [
        SegmentRow(
            segment=segment.segment,
            label=segment.label_zh if language == "zh-CN" else segment.label_en,
            customers=fmt.count(segment.customers),
            share=fmt.percent(segment.share),
            revenue=fmt.money(segment.revenue, currency),
        )
        for segment in view.segments
    ]
