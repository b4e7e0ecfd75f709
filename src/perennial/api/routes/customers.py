"""``/v1/customers``: the customer 360, its timeline, lists by stage, segment or tier, and search.

Every role may read. Phone and e-mail are masked for agents (unless they hold an
open task for the customer) and viewers; operators and admins see them, and each
such view of a customer's contact details is written to the audit log. Lists and
search results always mask them: they show many people at once, and opening the
customer is the audited way to see more. Customer ids are arbitrary strings
(percent-encode them in the path; ``/`` is allowed); an unknown id is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

import perennial.api.path_text  # noqa: F401 (registers the {name:text} convertor)
from perennial.access.audit import AuditEntry
from perennial.access.masking import contact_visible
from perennial.access.roles import Principal, Role
from perennial.api.customer_views import (
    Customer360,
    CustomerPage,
    SearchHitView,
    SearchResults,
    TimelinePage,
    has_contact,
    list_item,
    render_360,
    render_timeline,
)
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from perennial.api.responses import JsonResponse
from perennial.api.security import require
from perennial.api.serving import Serving, read, serving_of
from perennial.api.state import AppState, app_state
from perennial.lifecycle.tiers import ValueTier
from perennial.serving.board import load_board
from perennial.serving.customers import (
    CustomerFilter,
    CustomerSort,
    customer_exists,
    customer_record,
    document_codec,
    list_customers,
    search_customers,
    timeline_rows,
)

__all__ = [
    "FIRST_TIMELINE_PAGE",
    "customer_360",
    "customer_list",
    "customer_search",
    "customer_timeline",
    "router",
]

FIRST_TIMELINE_PAGE = 20
"""Timeline items the 360 includes; the timeline endpoint pages through the rest."""

router = APIRouter(
    prefix="/v1/customers",
    tags=["customers"],
    responses={503: {"model": ErrorBody, "description": "The serving store is not built yet."}},
)

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
CustomerId = Annotated[
    str, Path(min_length=1, max_length=256, description="The customer's id (any text).")
]
Cursor = Annotated[
    str | None, Query(max_length=512, description="``next_cursor`` of the previous page.")
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No customer has this id."}
}


@router.get("", response_model=CustomerPage, summary="List and filter customers")
def customer_list(
    _principal: Reader,
    serving: Serving,
    stage: Annotated[str | None, Query(max_length=64, description="A stage key.")] = None,
    rfm_segment: Annotated[str | None, Query(max_length=64)] = None,
    tier: ValueTier | None = None,
    sort: CustomerSort = "customer_id",
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> CustomerPage:
    """Customers by id, or by paid spend or last order (both newest/largest first)."""
    with read():
        reading = serving.reading()
        board = serving.cached("board", load_board, reading)
        _check_known("stage", stage, [s.key for s in board.stages])
        _check_known("rfm_segment", rfm_segment, [s.segment for s in board.rfm_segments])
        after = _list_cursor(cursor, sort)
        where = CustomerFilter(stage, rfm_segment, None if tier is None else tier.value)
        rows = list_customers(reading.connection, where, sort=sort, after=after, limit=limit + 1)
    labels = board.stage_labels()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].sort_key(sort)) if len(rows) > limit else None
    return CustomerPage(items=[list_item(row, labels) for row in page], next_cursor=next_cursor)


@router.get("/search", response_model=SearchResults, summary="Find customers")
def customer_search(
    _principal: Reader,
    serving: Serving,
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=256,
            description="A phone (any spelling), e-mail, customer id, external or WeChat id, "
            "or the start of a name.",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchResults:
    settings = app_state(request).settings
    with read():
        reading = serving.reading()
        board = serving.cached("board", load_board, reading)
        hits = search_customers(
            reading.connection, q, phone_region=settings.default_phone_region, limit=limit
        )
    labels = board.stage_labels()
    items = [
        SearchHitView(
            **list_item(hit.customer, labels).model_dump(), matched_on=list(hit.matched_on)
        )
        for hit in hits
    ]
    return SearchResults(items=items)


@router.get(
    "/{customer_id:text}/timeline",
    response_model=TimelinePage,
    responses=_NOT_FOUND,
    summary="A customer's orders and events, newest first",
)
async def customer_timeline(
    customer_id: CustomerId,
    principal: Reader,
    request: Request,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Response:
    before = _timeline_cursor(cursor)
    with read():
        connection = serving_of(request).connection()
        if not customer_exists(connection, customer_id):
            raise _not_found()
        rows = timeline_rows(connection, customer_id, before=before, limit=limit + 1)
    visible = _visible(request, principal, customer_id)
    if visible and any(row.contact for row in rows[:limit]):
        _audit_view(request, principal, customer_id, "timeline")
    return JsonResponse(render_timeline(rows, limit, visible))


@router.get(
    "/{customer_id:text}",
    response_model=Customer360,
    responses=_NOT_FOUND,
    summary="The customer 360",
)
async def customer_360(customer_id: CustomerId, principal: Reader, request: Request) -> Response:
    """Profile, RFM, value tier, stage and its history, identities, attributes and the first
    page of the timeline."""
    serving = serving_of(request)
    with read():
        reading = serving.reading()
        codec = serving.cached("documents", document_codec, reading)
        record = customer_record(reading.connection, customer_id, codec)
        if record is None:
            raise _not_found()
        rows = timeline_rows(
            reading.connection, customer_id, before=None, limit=FIRST_TIMELINE_PAGE + 1
        )
    visible = _visible(request, principal, customer_id)
    if visible and has_contact(record):
        _audit_view(request, principal, customer_id, "customer_360")
    return JsonResponse(render_360(record, rows, FIRST_TIMELINE_PAGE, visible))


def _check_known(field: str, value: str | None, known: list[str]) -> None:
    if value is not None and value not in known:
        raise ApiError(
            422,
            "invalid_input",
            f"unknown {field.replace('_', ' ')} {value!r}; known: {', '.join(known)}",
            f"query.{field}",
        )


def _list_cursor(cursor: str | None, sort: CustomerSort) -> list[Any] | None:
    if cursor is None:
        return None
    key = decode_cursor(cursor, 1 if sort == "customer_id" else 2)
    numbers_first = sort != "customer_id"
    valid = isinstance(key[-1], str) and (
        not numbers_first or (isinstance(key[0], int | float) and not isinstance(key[0], bool))
    )
    if not valid:
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this endpoint issued", "cursor"
        )
    return key


def _timeline_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    at, item_key = decode_cursor(cursor, 2)
    if not isinstance(at, int) or isinstance(at, bool) or not isinstance(item_key, str):
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this endpoint issued", "cursor"
        )
    return at, item_key


def _not_found() -> ApiError:
    return ApiError(404, "customer_not_found", "there is no customer with this id")


def _visible(request: Request, principal: Principal, customer_id: str) -> bool:
    """The masking rule of :func:`perennial.access.masking.contact_visible`; only a signed-in
    agent (who may hold a task; an API key has no user) costs a database round trip."""
    if principal.sees_personal_data:
        return True
    if Role.AGENT not in principal.roles or principal.user_id is None:
        return False
    state: AppState = app_state(request)
    with state.engine.connect() as connection:
        return contact_visible(connection, principal, customer_id)


def _audit_view(request: Request, principal: Principal, customer_id: str, via: str) -> None:
    app_state(request).audit.add(
        AuditEntry(
            actor=principal.subject,
            action="customer.viewed",
            subject_type="customer",
            subject_id=customer_id,
            detail={"fields": ["phone", "email"], "via": via},
            client=request.client.host if request.client else None,
        )
    )
