"""At-risk customers (风险预警): ``/at-risk``, high churn risk, most valuable first.

The list is the API's own (``GET /v1/predictions/at-risk``, called, not copied),
so it filters, sorts, pages and masks exactly as the API does, and the CSV link
downloads the same rows from the API. A filter the API refuses is explained on the
page; before ``perennial predict`` has run the page says how to fill it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Role
from perennial.api.errors import ApiError
from perennial.api.routes.predictions import AtRiskItem, RiskBand, at_risk_list
from perennial.api.serving import Serving
from perennial.lifecycle.tiers import VALUE_TIER_LABELS, ValueTier
from perennial.serving.at_risk import AtRiskSort
from perennial.serving.board import Board
from perennial.web.board_data import board_or_none, is_unavailable, no_data_page, styles_for
from perennial.web.customers_page import Choice, customer_url
from perennial.web.i18n import language_of, translate
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = ["PAGE_SIZE", "AtRiskRowView", "at_risk_page", "router"]

PAGE_SIZE = 50
_PROBABILITIES = ("0.3", "0.5", "0.7", "0.9")

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]


@dataclass(frozen=True, slots=True)
class AtRiskRowView:
    item: AtRiskItem
    url: str
    stage_label: str
    stage_colour: str
    tier_label: str
    reasons: list[str]


@router.get("/at-risk")
def at_risk_page(
    request: Request,
    viewer: Reader,
    serving: Serving,
    stage: str | None = None,
    tier: str | None = None,
    risk_band: str | None = None,
    sort: str | None = None,
    min_probability: str | None = None,
    cursor: str | None = None,
) -> Response:
    board = board_or_none(serving)
    chosen = {
        "stage": stage or None,
        "tier": tier or None,
        "risk_band": risk_band or None,
        "sort": sort or "clv",
        "min_probability": min_probability or "0.5",
    }
    if board is None:
        return no_data_page(request, viewer, "at_risk.title")
    language = language_of(request)
    t = partial(translate, language)
    errors: list[str] = []
    items: list[AtRiskItem] = []
    next_cursor = None
    try:
        items, next_cursor = _list(viewer, serving, chosen, cursor or None)
    except ApiError as error:
        if is_unavailable(error):
            return no_data_page(request, viewer, "at_risk.title")
        if error.status >= 500:
            raise
        errors.append(t("at_risk.bad_filter", message=error.message))
    except ValueError as refused:  # a filter value the list cannot take, named
        errors.append(t("at_risk.bad_filter", message=str(refused)))
    styles = styles_for(board, request)
    rows = [
        AtRiskRowView(
            item=item,
            url=customer_url(item.customer_id),
            stage_label=styles.label(item.stage),
            stage_colour=styles[item.stage].colour,
            tier_label=_tier_label(item.value_tier, language),
            reasons=item.reasons_zh if language == "zh-CN" else item.reasons_en,
        )
        for item in items
    ]
    return render_page(
        request,
        "at_risk.html",
        viewer=viewer,
        title_key="at_risk.title",
        status_code=422 if errors else 200,
        rows=rows,
        errors=errors,
        chosen=chosen,
        choices=_choices(board, request, language, t),
        next_url=_url(chosen, next_cursor) if next_cursor else None,
        csv_url=_csv_url(chosen),
        currency=board.main_currency or "CNY",
    )


def _list(
    viewer: Viewer, serving: Serving, chosen: dict[str, str | None], cursor: str | None
) -> tuple[list[AtRiskItem], str | None]:
    """The API's page for the chosen filters; ``ValueError`` for a value it cannot take."""
    tier, band, sort = chosen["tier"], chosen["risk_band"], chosen["sort"] or "clv"
    if tier and tier not in ValueTier._value2member_map_:
        raise ValueError(f"tier={tier}")
    if band and band not in get_args(RiskBand):
        raise ValueError(f"risk_band={band}")
    if sort not in get_args(AtRiskSort):
        raise ValueError(f"sort={sort}")
    probability = _probability(chosen["min_probability"] or "0.5")
    page = at_risk_list(
        viewer.principal,
        serving,
        min_probability=probability,
        stage=chosen["stage"],
        tier=ValueTier(tier) if tier else None,
        risk_band=cast(RiskBand | None, band),
        sort=cast(AtRiskSort, sort),
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    return page.items, page.next_cursor


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ValueError(f"min_probability={text}")
    return value


def _tier_label(tier: str | None, language: str) -> str:
    if tier is None or tier not in ValueTier._value2member_map_:
        return tier or "—"
    label = VALUE_TIER_LABELS[ValueTier(tier)]
    return label.zh if language == "zh-CN" else label.en


def _url(chosen: dict[str, str | None], cursor: str | None = None) -> str:
    query = {name: value for name, value in chosen.items() if value}
    if cursor:
        query["cursor"] = cursor
    return "/at-risk?" + urlencode(query)


def _csv_url(chosen: dict[str, str | None]) -> str:
    """The API's CSV of the same list (the page's filters are the API's parameters)."""
    query = {name: value for name, value in chosen.items() if value}
    return "/v1/predictions/at-risk?" + urlencode({**query, "format": "csv"})


def _choices(
    board: Board, request: Request, language: str, t: partial[str]
) -> dict[str, list[Choice]]:
    styles = styles_for(board, request)
    return {
        "stage": [Choice(style.key, style.label) for style in styles.stages],
        "tier": [
            Choice(tier.value, label.zh if language == "zh-CN" else label.en)
            for tier, label in VALUE_TIER_LABELS.items()
        ],
        "risk_band": [Choice(band, t(f"risk.{band}")) for band in get_args(RiskBand)],
        "sort": [Choice(sort, t(f"at_risk.sort.{sort}")) for sort in get_args(AtRiskSort)],
        "min_probability": [Choice(p, f"≥ {float(p):.0%}") for p in _PROBABILITIES],
    }
