"""``/v1/lifecycle``: the health board's numbers (stage distribution, flows, KPI cards, RFM grid).

Answers come from the board tables of the serving store (computed at refresh),
so they agree with each other and cost milliseconds. Each carries the stage
model's name and ``as_of``, the last day of the stored stage history (the day
the profiles describe when there is no history). Days are local days of the
model's time zone. Every role may read.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.security import require
from perennial.api.serving import Serving, read
from perennial.lifecycle.flows import Flow, top_movers
from perennial.lifecycle.stage_model import KpiRole
from perennial.serving.board import Board, BoardRangeError, Kpi, load_board
from perennial.serving.store import ServingStore

__all__ = [
    "DistributionView",
    "FlowView",
    "FlowsView",
    "KpiCard",
    "KpisView",
    "RfmCellView",
    "RfmGridView",
    "RfmSegmentView",
    "StageKpiCard",
    "StageLabel",
    "StageSeriesView",
    "TopMoversView",
    "distribution",
    "flows",
    "kpis",
    "rfm_grid",
    "router",
    "top_movers_view",
]

DEFAULT_DISTRIBUTION_DAYS = 90
DEFAULT_FLOW_DAYS = 30

router = APIRouter(
    prefix="/v1/lifecycle",
    tags=["lifecycle"],
    responses={503: {"model": ErrorBody, "description": "The serving store is not built yet."}},
)

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """Days as ``YYYY-MM-DD`` only: pydantic alone also reads ``0.0`` or ``86400`` (seconds
    since 1970) and ``2025-01-01T00:00`` as days, which no client means."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Start = Annotated[
    date | None, BeforeValidator(_iso_day), Query(description="First day (YYYY-MM-DD, local).")
]
End = Annotated[
    date | None,
    BeforeValidator(_iso_day),
    Query(description="Last day, included; default ``as_of``."),
]
_STRICT = ConfigDict(extra="forbid")


class StageLabel(BaseModel):
    model_config = _STRICT
    key: str
    label_en: str
    label_zh: str
    kpi: KpiRole | None


class _Answer(BaseModel):
    model_config = _STRICT
    model: str = Field(description="The stage model.")
    as_of: date = Field(description="The board's day: the last day of the stage history.")


class StageSeriesView(BaseModel):
    model_config = _STRICT
    stage: str = Field(description="A stage key, or ``(no stage)`` for customers no rule matched.")
    label_en: str | None
    label_zh: str | None
    customers: list[int] = Field(description="One count per entry of ``days``.")


class DistributionView(_Answer):
    start: date
    end: date
    days: list[date] = Field(description="The stored days of the range, in order.")
    series: list[StageSeriesView]


class FlowView(BaseModel):
    model_config = _STRICT
    from_stage: str = Field(description="Stage on ``start``; ``(new)``: not known then.")
    to_stage: str = Field(description="Stage on ``end``.")
    customers: int


class FlowsView(_Answer):
    start: date
    end: date
    flows: list[FlowView] = Field(description="Largest first; staying put included.")
    stages: list[StageLabel]


class TopMoversView(_Answer):
    start: date
    end: date
    movers: list[FlowView] = Field(description="The largest moves between different stages.")


class KpiCard(BaseModel):
    model_config = _STRICT
    value: float | None
    previous: float | None = Field(description="The same measure for the period before.")
    change: float | None = Field(description="value - previous.")
    change_ratio: float | None = Field(description="change / previous (null when previous is 0).")


class StageKpiCard(KpiCard):
    stages: list[str] = Field(description="The stages counted; none: the model has no such stage.")


class KpisView(_Answer):
    period_days: int
    period_start: date
    period_end: date
    previous_start: date
    previous_end: date
    currency: str | None = Field(description="Currency of ``revenue`` (the store's largest).")
    customers: KpiCard = Field(description="Customers known at the end of the period.")
    active: StageKpiCard
    new: StageKpiCard
    dormant: StageKpiCard
    churned: StageKpiCard
    revenue: KpiCard = Field(description="Paid orders' amount placed in the period.")
    repurchase_rate: KpiCard = Field(
        description="Share of the period's buyers who placed two or more paid orders in it."
    )


class RfmCellView(BaseModel):
    model_config = _STRICT
    r: int
    f: int
    customers: int
    revenue: float = Field(description="Their paid spend to the profiles' as-of.")


class RfmSegmentView(BaseModel):
    model_config = _STRICT
    segment: str
    label_en: str
    label_zh: str
    customers: int
    revenue: float
    share: float = Field(description="Of all customers.")


class RfmGridView(_Answer):
    customers: int
    cells: list[RfmCellView] = Field(description="All 25 R x F cells, R then F ascending.")
    segments: list[RfmSegmentView]


@router.get("/distribution", response_model=DistributionView, summary="Stage counts per day")
def distribution(
    _principal: Reader, serving: Serving, start: Start = None, end: End = None
) -> DistributionView:
    board = _board(serving)
    first, last = _range(board, start, end, DEFAULT_DISTRIBUTION_DAYS)
    days, series = board.distribution(first, last)
    labels = {stage.key: stage for stage in board.stages}
    return DistributionView(
        model=board.model,
        as_of=board.as_of,
        start=first,
        end=last,
        days=days,
        series=[
            StageSeriesView(
                stage=item.stage,
                label_en=labels[item.stage].label_en if item.stage in labels else None,
                label_zh=labels[item.stage].label_zh if item.stage in labels else None,
                customers=item.customers,
            )
            for item in series
        ],
    )


@router.get("/flows", response_model=FlowsView, summary="Flows between two days")
def flows(_principal: Reader, serving: Serving, start: Start = None, end: End = None) -> FlowsView:
    board = _board(serving)
    first, last, moved = _flows(board, start, end)
    return FlowsView(
        model=board.model,
        as_of=board.as_of,
        start=first,
        end=last,
        flows=[_flow(flow) for flow in moved],
        stages=[
            StageLabel(key=s.key, label_en=s.label_en, label_zh=s.label_zh, kpi=s.kpi)
            for s in board.stages
        ],
    )


@router.get("/top-movers", response_model=TopMoversView, summary="The largest stage changes")
def top_movers_view(
    _principal: Reader,
    serving: Serving,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> TopMoversView:
    board = _board(serving)
    first, last, moved = _flows(board, start, end)
    return TopMoversView(
        model=board.model,
        as_of=board.as_of,
        start=first,
        end=last,
        movers=[_flow(flow) for flow in top_movers(moved, limit)],
    )


@router.get("/kpis", response_model=KpisView, summary="KPI cards with the previous period")
def kpis(
    _principal: Reader,
    serving: Serving,
    period_days: Annotated[int, Query(ge=1, le=366, description="Days per period.")] = 30,
) -> KpisView:
    board = _board(serving)
    report = board.kpis(period_days)
    stage_cards = {role: _stage_card(card) for role, card in report.roles.items()}
    return KpisView(
        model=board.model,
        as_of=board.as_of,
        period_days=period_days,
        period_start=report.period[0],
        period_end=report.period[1],
        previous_start=report.previous_period[0],
        previous_end=report.previous_period[1],
        currency=board.main_currency,
        customers=_card(report.customers),
        active=stage_cards["active"],
        new=stage_cards["new"],
        dormant=stage_cards["dormant"],
        churned=stage_cards["churned"],
        revenue=_card(report.revenue),
        repurchase_rate=_card(report.repurchase_rate),
    )


@router.get("/rfm-grid", response_model=RfmGridView, summary="Customers and revenue per RFM cell")
def rfm_grid(_principal: Reader, serving: Serving) -> RfmGridView:
    board = _board(serving)
    total = sum(segment.customers for segment in board.rfm_segments)
    return RfmGridView(
        model=board.model,
        as_of=board.profiles_day,
        customers=total,
        cells=[
            RfmCellView(r=c.r, f=c.f, customers=c.customers, revenue=c.revenue)
            for c in board.rfm_cells
        ],
        segments=[
            RfmSegmentView(
                segment=s.segment,
                label_en=s.label_en,
                label_zh=s.label_zh,
                customers=s.customers,
                revenue=s.revenue,
                share=s.customers / total if total else 0.0,
            )
            for s in board.rfm_segments
        ],
    )


def _board(serving: ServingStore) -> Board:
    with read():
        return serving.cached("board", load_board, serving.reading())


def _range(board: Board, start: date | None, end: date | None, days: int) -> tuple[date, date]:
    last = end or board.as_of
    first_stored = board.history[0] if board.history else board.as_of
    default_first = last - timedelta(days=days - 1) if last > date.min + timedelta(days) else last
    first = start or max(default_first, first_stored)
    if first > last:
        raise ApiError(422, "invalid_input", f"start {first} is after end {last}", "query.start")
    return first, last


def _flows(board: Board, start: date | None, end: date | None) -> tuple[date, date, list[Flow]]:
    first, last = _range(board, start, end, DEFAULT_FLOW_DAYS + 1)
    try:
        return first, last, board.flows(first, last)
    except BoardRangeError as error:
        raise ApiError(422, "out_of_range", str(error), f"query.{error.field}") from None


def _flow(flow: Flow) -> FlowView:
    return FlowView(from_stage=flow.from_stage, to_stage=flow.to_stage, customers=flow.customers)


def _card(kpi: Kpi) -> KpiCard:
    return KpiCard(
        value=kpi.value, previous=kpi.previous, change=kpi.change, change_ratio=kpi.change_ratio
    )


def _stage_card(kpi: Kpi) -> StageKpiCard:
    return StageKpiCard(**_card(kpi).model_dump(), stages=list(kpi.stages))
