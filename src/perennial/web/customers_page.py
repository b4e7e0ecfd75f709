"""Customers: ``/customers``, a search box and a list filtered by stage, RFM segment and tier.

The search and the list are the API's own (``GET /v1/customers/search`` and
``GET /v1/customers``, called, not copied), so they find, filter, page and mask
exactly as the API does: phone and e-mail are always masked in lists. A search
that finds exactly one customer by an identifier (id, phone, e-mail, external
or WeChat id) or by their whole name opens that customer's 360 at once, as a
customer-service agent with a caller on the line expects. Pagination follows
the API's cursor (forward only, "next page"); a filter or cursor the API
refuses is explained on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from perennial.access.roles import Role
from perennial.api.customer_views import CustomerListItem, SearchHitView
from perennial.api.errors import ApiError
from perennial.api.routes.customers import customer_list, customer_search
from perennial.api.serving import Serving
from perennial.lifecycle.tiers import VALUE_TIER_LABELS, ValueTier
from perennial.serving.board import Board
from perennial.serving.customers import CustomerSort, name_key
from perennial.serving.store import ServingStore
from perennial.web.board_data import board_or_none, is_unavailable, no_data_page, styles_for
from perennial.web.i18n import language_of, translate
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page
from perennial.web.stage_display import StageStyles
from perennial.web.value_labels import value_label

__all__ = [
    "MAX_QUERY",
    "PAGE_SIZE",
    "SEARCH_LIMIT",
    "Choice",
    "CustomerRow",
    "customer_url",
    "customers_page",
    "is_exact",
    "router",
]

PAGE_SIZE = 50
SEARCH_LIMIT = 20
MAX_QUERY = 256
"""The API's limit on a search text."""
_SORTS: dict[str, CustomerSort] = {sort: sort for sort in get_args(CustomerSort)}

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Translate = Callable[..., str]


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class _Labels:
    """What a row needs to name stages, segments and tiers in the viewer's language."""

    language: str
    styles: StageStyles
    segments: dict[str, str]


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A list or search item as the table shows it (contact details as the API masked them)."""

    item: CustomerListItem
    url: str
    stage_label: str
    stage_colour: str
    segment_label: str
    tier_label: str
    matched_on: tuple[str, ...] = ()


def customer_url(customer_id: str) -> str:
    """The 360 page of ``customer_id`` (any text: ``/``, ``?`` and ``#`` are percent-encoded)."""
    return "/customers/" + quote(customer_id, safe="")


def is_exact(hit: SearchHitView, query: str) -> bool:
    """Whether ``hit`` matched an identifier, or its whole name is ``query`` (case ignored)."""
    if any(kind != "name" for kind in hit.matched_on):
        return True
    return hit.name is not None and name_key(hit.name) == name_key(query.strip())


@router.get("/customers")
def customers_page(
    request: Request,
    viewer: Reader,
    serving: Serving,
    q: str | None = None,
    stage: str | None = None,
    rfm_segment: str | None = None,
    tier: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
) -> Response:
    board = board_or_none(serving)
    chosen = {"stage": stage or None, "rfm_segment": rfm_segment or None, "tier": tier or None}
    chosen["sort"] = sort or None
    try:
        if board is not None:
            return _customers(request, viewer, serving, board, (q or "").strip(), chosen, cursor)
    except ApiError as error:
        if not is_unavailable(error):
            raise
    return no_data_page(request, viewer, "customers.title")


def _customers(
    request: Request,
    viewer: Viewer,
    serving: ServingStore,
    board: Board,
    query: str,
    chosen: dict[str, str | None],
    cursor: str | None,
) -> Response:
    t = partial(translate, language_of(request))
    errors: list[str] = []
    rows: list[CustomerRow] = []
    next_url = None
    if query:
        hits = _search(request, viewer, serving, query, errors, t)
        if len(hits) == 1 and is_exact(hits[0], query):
            return RedirectResponse(customer_url(hits[0].customer_id), status_code=303)
        rows = [_row(hit, _labels(board, request), hit.matched_on) for hit in hits]
    else:
        items, next_cursor = _list(viewer, serving, chosen, cursor or None, errors, t)
        labels = _labels(board, request)
        rows = [_row(item, labels) for item in items]
        if next_cursor:
            next_url = _list_url(chosen, next_cursor)
    return render_page(
        request,
        "customers.html",
        viewer=viewer,
        title_key="customers.title",
        status_code=422 if errors else 200,
        query=query,
        chosen=chosen,
        choices=_choices(board, request, t),
        rows=rows,
        searched=bool(query),
        next_url=next_url,
        first_url=_list_url(chosen) if cursor else None,
        errors=errors,
        currency=board.main_currency or "CNY",
        value_label=partial(value_label, language_of(request)),
    )


def _list_url(chosen: dict[str, str | None], cursor: str | None = None) -> str:
    """The list with the same filters, from its first page or from ``cursor``."""
    query = {name: value for name, value in chosen.items() if value}
    if cursor:
        query["cursor"] = cursor
    return "/customers?" + urlencode(query) if query else "/customers"


def _search(
    request: Request,
    viewer: Viewer,
    serving: ServingStore,
    query: str,
    errors: list[str],
    t: Translate,
) -> list[SearchHitView]:
    if len(query) > MAX_QUERY:
        errors.append(t("customers.query_too_long", maximum=MAX_QUERY))
        return []
    found = customer_search(viewer.principal, serving, request, q=query, limit=SEARCH_LIMIT)
    return found.items


def _list(
    viewer: Viewer,
    serving: ServingStore,
    chosen: dict[str, str | None],
    cursor: str | None,
    errors: list[str],
    t: Translate,
) -> tuple[list[CustomerListItem], str | None]:
    tier = chosen["tier"]
    sort = _SORTS.get(chosen["sort"] or "customer_id")
    if tier is not None and tier not in ValueTier._value2member_map_:
        errors.append(t("customers.bad_filter", value=tier))
        return [], None
    if sort is None:
        errors.append(t("customers.bad_filter", value=chosen["sort"]))
        return [], None
    try:
        page = customer_list(
            viewer.principal,
            serving,
            stage=chosen["stage"],
            rfm_segment=chosen["rfm_segment"],
            tier=None if tier is None else ValueTier(tier),
            sort=sort,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    except ApiError as error:
        if error.status >= 500:
            raise
        key = "customers.bad_cursor" if error.code == "invalid_cursor" else "customers.bad_filter"
        value = cursor if error.code == "invalid_cursor" else _refused(error, chosen)
        errors.append(t(key, value=value))
        return [], None
    return page.items, page.next_cursor


def _refused(error: ApiError, chosen: dict[str, str | None]) -> str:
    """The chosen value the API refused (its error names the query parameter)."""
    name = (error.field or "").removeprefix("query.")
    return chosen.get(name) or name


def _labels(board: Board, request: Request) -> _Labels:
    language = language_of(request)
    segments = {
        segment.segment: segment.label_zh if language == "zh-CN" else segment.label_en
        for segment in board.rfm_segments
    }
    return _Labels(language, styles_for(board, request), segments)


def _row(item: CustomerListItem, labels: _Labels, matched_on: Sequence[str] = ()) -> CustomerRow:
    tier = item.value_tier
    tier_label = tier or "—"
    if tier is not None and tier in ValueTier._value2member_map_:
        label = VALUE_TIER_LABELS[ValueTier(tier)]
        tier_label = label.zh if labels.language == "zh-CN" else label.en
    return CustomerRow(
        item=item,
        url=customer_url(item.customer_id),
        stage_label=labels.styles.label(item.stage),
        stage_colour=labels.styles[item.stage].colour,
        segment_label=labels.segments.get(item.rfm_segment or "", item.rfm_segment or "—"),
        tier_label=tier_label,
        matched_on=tuple(matched_on),
    )


def _choices(board: Board, request: Request, t: Translate) -> dict[str, list[Choice]]:
    language = language_of(request)
    styles = styles_for(board, request)
    return {
        "stage": [Choice(style.key, style.label) for style in styles.stages],
        "rfm_segment": [
            Choice(s.segment, s.label_zh if language == "zh-CN" else s.label_en)
            for s in board.rfm_segments
        ],
        "tier": [
            Choice(tier.value, label.zh if language == "zh-CN" else label.en)
            for tier, label in VALUE_TIER_LABELS.items()
        ],
        "sort": [Choice(sort, t(f"sort.{sort}")) for sort in _SORTS],
    }
