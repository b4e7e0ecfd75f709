"""The customer 360 page: ``/customers/{customer_id}``.

The page shows what ``GET /v1/customers/{id}`` answers for the viewer, by calling
that endpoint: phone, e-mail, identities and identify events are masked (or not)
by the API's own rule and code, and an unmasked view is written to the audit log
the same way. The order and event timeline continues with the API's cursor: the
"more" link opens ``?cursor=...`` (works without JavaScript), and
``static/timeline.js`` fetches ``?cursor=...&part=timeline`` (only the next items)
and appends them in place. An unknown customer gets a friendly 404 page with a
search box. The journeys section lists what each journey did to the customer (sends
with their outcome and reason, tasks, conversions), from the journey service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from perennial.access.roles import Role
from perennial.api.customer_views import Customer360, Identity, TimelinePage
from perennial.api.errors import ApiError
from perennial.api.routes.customers import FIRST_TIMELINE_PAGE, customer_360, customer_timeline
from perennial.api.routes.journeys import journey_service
from perennial.api.serving import Serving
from perennial.api.state import app_state
from perennial.lifecycle.flows import NEW
from perennial.segments.repository import changes_after
from perennial.segments.tag_store import tags_of
from perennial.serving.board import Board
from perennial.web.board_data import board_or_none, no_data_page, styles_for
from perennial.web.charts import stage_timeline_figure
from perennial.web.customer_card import detail_facts, feature_sections, key_facts
from perennial.web.customers_page import customer_url
from perennial.web.error_pages import render_error
from perennial.web.formatting import Formatter
from perennial.web.i18n import language_of, translate
from perennial.web.journey_history import journey_history
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page
from perennial.web.stage_display import StageStyles
from perennial.web.value_labels import value_label

__all__ = ["TIMELINE_PART", "StageEntry", "customer_page", "router"]

TIMELINE_PART = "timeline"
"""``?part=timeline``: only the timeline items after ``cursor`` (for the "more" link)."""

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Translate = Callable[..., str]


@dataclass(frozen=True, slots=True)
class StageEntry:
    """One transition of the customer's stage history, as the page lists it."""

    day: str
    from_label: str
    from_colour: str
    to_label: str
    to_colour: str


@router.get("/customers/{customer_id:path}")
async def customer_page(
    request: Request,
    customer_id: str,
    viewer: Reader,
    serving: Serving,
    cursor: str | None = None,
    part: str | None = None,
) -> Response:
    if not customer_id:
        return RedirectResponse("/customers", status_code=303)
    board = board_or_none(serving)
    if board is None:
        return no_data_page(request, viewer, "customer.title")
    if part == TIMELINE_PART:
        return await _timeline_part(request, viewer, customer_id, cursor)
    try:
        answer = await customer_360(customer_id, viewer.principal, request)
        later = await _timeline(request, viewer, customer_id, cursor) if cursor else None
    except ApiError as error:
        return _refused(request, viewer, customer_id, error)
    view = Customer360.model_validate_json(bytes(answer.body))
    errors: list[str] = []
    timeline = view.timeline
    if cursor:
        if later is None:
            errors.append(translate(language_of(request), "customer.bad_cursor"))
        else:
            timeline = later
    return render_page(
        request,
        "customer.html",
        viewer=viewer,
        title_key="customer.title",
        errors=errors,
        older=bool(cursor) and not errors,
        **_timeline_values(request, customer_id, timeline),
        **_profile_values(request, view, board),
        **_tags_and_segments(request, customer_id),
        journey_history=journey_history(
            journey_service(app_state(request)),
            customer_id,
            _formatter(request),
            masked=view.contact.masked,
        ),
    )


def _tags_and_segments(request: Request, customer_id: str) -> dict[str, Any]:
    """The customer's tags (value, source, why, when, who) and the segments they are in."""
    service = app_state(request).segments
    if service is None:
        return {"tags": [], "segments": []}
    fmt = _formatter(request)
    with service.operational.connect() as connection:
        tags = tags_of(connection, customer_id)
        changes = changes_after(connection, 0, limit=1000, customer_id=customer_id)
    inside: dict[str, str] = {}
    for change in changes:
        if change.change == "enter":
            inside[change.name] = fmt.datetime(change.at)
        else:
            inside.pop(change.name, None)
    return {
        "tags": [
            {
                "tag": tag.tag,
                "value": tag.value,
                "source": tag.source,
                "reason": tag.reason,
                "set_at": fmt.datetime(tag.set_at),
                "set_by": tag.set_by,
            }
            for tag in tags
        ],
        "segments": sorted(inside.items()),
    }


async def _timeline(
    request: Request, viewer: Viewer, customer_id: str, cursor: str
) -> TimelinePage | None:
    """The timeline page after ``cursor``; ``None`` when the API refuses the cursor."""
    try:
        answer = await customer_timeline(
            customer_id,
            viewer.principal,
            request,
            cursor=cursor,
            limit=FIRST_TIMELINE_PAGE,
        )
    except ApiError as error:
        if error.code == "invalid_cursor":
            return None
        raise
    return TimelinePage.model_validate_json(bytes(answer.body))


async def _timeline_part(
    request: Request,
    viewer: Viewer,
    customer_id: str,
    cursor: str | None,
) -> Response:
    if not cursor:
        return render_error(request, 400)
    try:
        page = await _timeline(request, viewer, customer_id, cursor)
    except ApiError as error:
        return render_error(request, error.status)
    if page is None:
        return render_error(request, 400)
    return render_page(
        request,
        "customer_timeline.html",
        viewer=viewer,
        title_key="customer.title",
        **_timeline_values(request, customer_id, page),
    )


def _refused(request: Request, viewer: Viewer, customer_id: str, error: ApiError) -> Response:
    if error.code == "customer_not_found":
        return render_page(
            request,
            "customer_missing.html",
            viewer=viewer,
            title_key="customer.missing_title",
            status_code=404,
            customer_id=customer_id,
        )
    if error.code == "serving_unavailable":
        return no_data_page(request, viewer, "customer.title")
    return render_error(request, error.status)


def _formatter(request: Request) -> Formatter:
    return Formatter(language_of(request), app_state(request).settings.default_timezone)


def _timeline_values(request: Request, customer_id: str, page: TimelinePage) -> dict[str, Any]:
    more = None
    if page.next_cursor:
        more = customer_url(customer_id) + "?" + urlencode({"cursor": page.next_cursor})
    return {
        "timeline": page.items,
        "more_url": more,
        "newest_url": customer_url(customer_id),
        "value_label": partial(value_label, language_of(request)),
        "format_properties": _properties,
    }


def _properties(properties: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An event's properties as (key, text) pairs; nested values as compact JSON text."""
    if not properties:
        return []
    return [
        (str(key), value if isinstance(value, str) else orjson.dumps(value).decode())
        for key, value in properties.items()
    ]


def _profile_values(request: Request, view: Customer360, board: Board) -> dict[str, Any]:
    language = language_of(request)
    t = partial(translate, language)
    fmt = _formatter(request)
    styles = styles_for(board, request)
    currency = board.main_currency or "CNY"
    yes_no = (t("value.yes"), t("value.no"))
    figure = stage_timeline_figure(
        view.stage_history,
        view.stage.key,
        styles,
        first_day=board.history[0] if board.history else None,
        until=board.as_of,
        language=language,
    )
    return {
        "customer": view,
        "currency": currency,
        "stage_label": styles.label(view.stage.key),
        "stage_colour": styles[view.stage.key].colour,
        "segment_label": _pick(language, view.rfm.segment_label_zh, view.rfm.segment_label_en),
        "tier_label": _pick(language, view.value_tier.label_zh, view.value_tier.label_en),
        "key_facts": key_facts(view.features, fmt, currency, yes_no),
        "sections": feature_sections(view.features, fmt, currency, yes_no),
        "details": detail_facts(view.details, fmt, t),
        "identities": [_identity(identity, fmt, language) for identity in view.identities],
        "stage_entries": _stage_entries(view, styles, fmt),
        "stage_chart": figure,
        "attributes": _properties(view.attributes),
    }


def _pick(language: str, chinese: str | None, english: str | None) -> str:
    return (chinese if language == "zh-CN" else english) or "—"


def _identity(identity: Identity, fmt: Formatter, language: str) -> dict[str, str]:
    return {
        "type": value_label(language, "identity", identity.type),
        "value": identity.value,
        "first_seen": fmt.datetime(identity.first_seen_at) if identity.first_seen_at else "—",
    }


def _stage_entries(view: Customer360, styles: StageStyles, fmt: Formatter) -> list[StageEntry]:
    """Transitions newest first; a ``from_stage`` of none means not known the day before."""
    return [
        StageEntry(
            day=fmt.date(change.day),
            from_label=styles.label(change.from_stage or NEW),
            from_colour=styles[change.from_stage or NEW].colour,
            to_label=styles.label(change.to_stage),
            to_colour=styles[change.to_stage].colour,
        )
        for change in view.stage_history
    ]
