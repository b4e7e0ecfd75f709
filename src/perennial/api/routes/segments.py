"""``/v1/segments``: saved segments, validation, live count preview, members, exports, changes.

Every role may read, validate and preview; operators (and admins) create,
change, archive, refresh and export. A definition is given as text
(``expression``) or in the builder's JSON form (``expression_json``); either way
it is checked before anything is saved, and a mistake is a 422 naming where
(the column of the text, or the JSON path). ``/v1/segments/changes`` is the
enter/exit log, in order, for whoever acts on membership (journeys).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.security import require
from perennial.api.state import State
from perennial.errors import ConfigError
from perennial.lifecycle.rule_errors import ParseError
from perennial.segments.ast import event_types, format_expression
from perennial.segments.export import WebhookError, check_webhook_url, csv_lines, post_members
from perennial.segments.json_form import from_json, to_json
from perennial.segments.parser import parse_expression
from perennial.segments.references import SegmentCycleError, UnknownSegmentError
from perennial.segments.repository import (
    SavedSegment,
    changes_after,
    members_page,
    segment_versions,
    size_trend,
)
from perennial.segments.service import SegmentService, UnknownSegment
from perennial.segments.timing import is_time_relative

__all__ = [
    "CatalogOut",
    "Change",
    "ChangesOut",
    "Definition",
    "ExpressionError",
    "Field_",
    "Member",
    "MembersOut",
    "PreviewOut",
    "RefreshOut",
    "SavedOut",
    "SegmentCreate",
    "SegmentIn",
    "SegmentOut",
    "SizePoint",
    "ValidateOut",
    "WebhookIn",
    "WebhookOut",
    "archive",
    "catalog",
    "changes",
    "create",
    "export_csv",
    "export_webhook",
    "list_all",
    "members",
    "preview",
    "refresh",
    "router",
    "segment_service",
    "show",
    "update",
    "validate",
    "versions",
]

router = APIRouter(
    prefix="/v1/segments",
    tags=["segments"],
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Writer = Annotated[Principal, Depends(require(Role.OPERATOR))]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$"
Name = Annotated[
    str,
    Path(
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$",
        description="The segment's name.",
    ),
]
EXPORT_LIMIT = 1_000_000
TREND_DAYS = 30


class Definition(BaseModel):
    """An expression as text or in the builder's JSON form (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    expression: str | None = Field(default=None, max_length=8000)
    expression_json: dict[str, Any] | None = None


class SegmentIn(Definition):
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    live: bool = Field(default=True, strict=True)


class SegmentCreate(SegmentIn):
    name: str = Field(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


class SizePoint(BaseModel):
    day: date
    members: int


class SegmentOut(BaseModel):
    name: str
    title: str
    description: str
    version: int
    expression: str
    expression_json: dict[str, Any]
    live: bool
    time_relative: bool = Field(description="Re-evaluated on the clock as well as on events.")
    event_types: list[str]
    members: int
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str
    trend: list[SizePoint] = Field(description=f"Size on each of the last {TREND_DAYS} days.")


class RefreshOut(BaseModel):
    name: str
    version: int
    members: int
    entered: int
    exited: int
    seconds: float


class SavedOut(BaseModel):
    segment: SegmentOut
    refresh: RefreshOut | None


class ExpressionError(BaseModel):
    message: str
    reason: str
    position: int | None = Field(description="0-based offset into ``expression``.")
    line: int | None
    column: int | None
    field: str | None = Field(description="JSON path, for a mistake in ``expression_json``.")


class ValidateOut(BaseModel):
    valid: bool
    expression: str | None = Field(description="The canonical text (when valid).")
    expression_json: dict[str, Any] | None
    error: ExpressionError | None


class PreviewOut(BaseModel):
    expression: str
    count: int
    customers: int
    sample: list[str]
    seconds: float


class Member(BaseModel):
    customer_id: str
    entered_at: datetime


class MembersOut(BaseModel):
    items: list[Member]
    next_after: str | None = Field(description="Pass as ``after`` for the next page.")


class Change(BaseModel):
    change_seq: int
    name: str
    customer_id: str
    change: str = Field(description="enter or exit")
    at: datetime
    version: int
    trigger: str = Field(description="save, refresh, live, schedule or archive")


class ChangesOut(BaseModel):
    items: list[Change]
    next_after: int


class Field_(BaseModel):
    name: str
    kind: str


class CatalogOut(BaseModel):
    fields: list[Field_]
    event_types: list[str]
    tags: list[str]
    segments: list[str]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, pattern=r"^https?://")
    secret: str | None = Field(default=None, max_length=200)
    batch_size: int = Field(default=1000, ge=1, le=10_000, strict=True)
    retries: int = Field(default=3, ge=0, le=5, strict=True, description="Retries of a batch.")


class WebhookOut(BaseModel):
    batches: int
    members: int
    attempts: int


def segment_service(state: State) -> SegmentService:
    if state.segments is None:  # pragma: no cover - set by create_api
        raise ApiError(503, "unavailable", "segments are not available")
    return state.segments


Service = Annotated[SegmentService, Depends(segment_service)]


def _text(definition: Definition) -> str:
    if (definition.expression is None) == (definition.expression_json is None):
        raise ApiError(422, "invalid_input", "give exactly one of expression and expression_json")
    if definition.expression is not None:
        return definition.expression
    try:
        return format_expression(from_json(definition.expression_json))
    except ConfigError as error:
        raise ApiError(
            422, "invalid_expression", error.reason, f"body.expression_json.{error.key_path}"
        ) from None
    except ParseError as error:
        raise _expression_error(error, "body.expression_json") from None


def _expression_error(error: ParseError, field: str) -> ApiError:
    return ApiError(422, "invalid_expression", str(error), field)


def _segment_out(service: SegmentService, segment: SavedSegment) -> SegmentOut:
    expression = parse_expression(segment.expression)
    with service.operational.connect() as connection:
        since = service.settings.now().date() - timedelta(days=TREND_DAYS)
        trend = size_trend(connection, segment.name, since)
        saved = {s.name: parse_expression(s.expression) for s in service.all_segments()}
    return SegmentOut(
        name=segment.name,
        title=segment.title,
        description=segment.description,
        version=segment.version,
        expression=segment.expression,
        expression_json=to_json(expression),
        live=segment.live,
        time_relative=is_time_relative(expression, saved),
        event_types=list(event_types(expression)),
        members=segment.members,
        refreshed_at=segment.refreshed_at,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
        created_by=segment.created_by,
        trend=[SizePoint(day=day, members=members) for day, members in trend],
    )


def _checked(call: Any) -> Any:
    try:
        return call()
    except ParseError as error:
        raise _expression_error(error, "body.expression") from None
    except SegmentCycleError as error:
        raise ApiError(422, "segment_cycle", str(error), "body.expression") from None
    except UnknownSegmentError as error:
        raise ApiError(422, "unknown_segment", str(error), "body.expression") from None
    except UnknownSegment as error:
        raise ApiError(404, "not_found", str(error)) from None
    except ConfigError as error:
        field = f"body.{error.key_path}" if error.key_path else None
        raise ApiError(422, "invalid_input", str(error), field) from None


@router.get("", response_model=list[SegmentOut], summary="Saved segments with sizes and trend")
def list_all(_principal: Reader, service: Service) -> list[SegmentOut]:
    return [_segment_out(service, segment) for segment in service.all_segments()]


@router.get("/fields", response_model=CatalogOut, summary="What an expression may use")
def catalog(_principal: Reader, service: Service) -> CatalogOut:
    names = service.catalog()
    return CatalogOut(
        fields=[Field_(name=n, kind=k.value) for n, k in sorted(names.fields.items())],
        event_types=sorted(names.event_types or ()),
        tags=sorted(names.tags or ()),
        segments=sorted(names.segments or ()),
    )


@router.post("/validate", response_model=ValidateOut, summary="Check an expression, with positions")
def validate(_principal: Reader, service: Service, body: Definition) -> ValidateOut:
    if (body.expression is None) == (body.expression_json is None):
        raise ApiError(422, "invalid_input", "give exactly one of expression and expression_json")
    text = body.expression or ""
    try:
        if body.expression_json is not None:
            text = format_expression(from_json(body.expression_json))
        canonical = service.check(text)
    except ConfigError as error:
        failure = ExpressionError(
            message=str(error),
            reason=error.reason,
            position=None,
            line=None,
            column=None,
            field=error.key_path,
        )
        return ValidateOut(valid=False, expression=None, expression_json=None, error=failure)
    except ParseError as error:
        failure = ExpressionError(
            message=str(error),
            reason=error.reason,
            position=error.position,
            line=error.line,
            column=error.column,
            field=None,
        )
        return ValidateOut(valid=False, expression=text, expression_json=None, error=failure)
    except (SegmentCycleError, UnknownSegmentError) as error:
        failure = ExpressionError(
            message=str(error), reason=str(error), position=None, line=None, column=None, field=None
        )
        return ValidateOut(valid=False, expression=text, expression_json=None, error=failure)
    return ValidateOut(
        valid=True,
        expression=canonical,
        expression_json=to_json(parse_expression(canonical)),
        error=None,
    )


@router.post("/preview", response_model=PreviewOut, summary="Count who matches now, with a sample")
def preview(
    _principal: Reader,
    service: Service,
    body: Definition,
    sample: Annotated[int, Query(ge=0, le=100)] = 20,
) -> PreviewOut:
    text = _text(body)
    result = _checked(lambda: service.preview(text, sample=sample))
    return PreviewOut(**result.__dict__)


@router.post("", response_model=SavedOut, status_code=201, summary="Save a new segment")
def create(principal: Writer, service: Service, body: SegmentCreate) -> SavedOut:
    return _save(principal, service, body.name, body)


@router.put("/{name}", response_model=SavedOut, summary="Save a new version of a segment")
def update(principal: Writer, service: Service, name: Name, body: SegmentIn) -> SavedOut:
    return _save(principal, service, name, body)


def _save(principal: Principal, service: SegmentService, name: str, body: SegmentIn) -> SavedOut:
    text = _text(body)
    saved, result = _checked(
        lambda: service.save(
            name,
            text,
            title=body.title,
            description=body.description,
            live=body.live,
            user=principal.subject,
        )
    )
    refresh = (
        None
        if result is None
        else RefreshOut(**{k: getattr(result, k) for k in RefreshOut.model_fields})
    )
    return SavedOut(segment=_segment_out(service, service.get(saved.name)), refresh=refresh)


@router.get("/changes", response_model=ChangesOut, summary="The enter/exit log, oldest first")
def changes(
    _principal: Reader,
    service: Service,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    name: Annotated[str | None, Query(max_length=100, pattern=NAME_PATTERN)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> ChangesOut:
    with service.operational.connect() as connection:
        found = changes_after(connection, after, limit=limit, name=name, customer_id=customer_id)
    items = [Change(**change.__dict__) for change in found]
    return ChangesOut(items=items, next_after=items[-1].change_seq if items else after)


@router.get("/{name}", response_model=SegmentOut, summary="One segment")
def show(_principal: Reader, service: Service, name: Name) -> SegmentOut:
    return _segment_out(service, _checked(lambda: service.get(name)))


@router.get("/{name}/versions", summary="Every version of a segment, newest first")
def versions(_principal: Reader, service: Service, name: Name) -> list[dict[str, Any]]:
    _checked(lambda: service.get(name))
    with service.operational.connect() as connection:
        rows = segment_versions(connection, name)
    return [
        {
            "version": row.version,
            "title": row.title,
            "description": row.description,
            "expression": row.expression,
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
        for row in rows
    ]


@router.delete("/{name}", response_model=RefreshOut, summary="Archive a segment (members exit)")
def archive(_principal: Writer, service: Service, name: Name) -> RefreshOut:
    result = _checked(lambda: service.archive(name))
    return RefreshOut(**{k: getattr(result, k) for k in RefreshOut.model_fields})


@router.post("/{name}/refresh", response_model=RefreshOut, summary="Recompute membership now")
def refresh(_principal: Writer, service: Service, name: Name) -> RefreshOut:
    (result,) = _checked(lambda: service.refresh([name]))
    return RefreshOut(**{k: getattr(result, k) for k in RefreshOut.model_fields})


@router.get("/{name}/members", response_model=MembersOut, summary="Members, by customer id")
def members(
    _principal: Reader,
    service: Service,
    name: Name,
    after: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersOut:
    _checked(lambda: service.get(name))
    with service.operational.connect() as connection:
        page = members_page(connection, name, after=after, limit=limit)
    items = [Member(customer_id=c, entered_at=at) for c, at in page]
    return MembersOut(
        items=items, next_after=items[-1].customer_id if len(items) == limit else None
    )


@router.get(
    "/{name}/export",
    summary="Members as CSV",
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(_principal: Writer, service: Service, name: Name) -> StreamingResponse:
    _checked(lambda: service.get(name))
    with service.operational.connect() as connection:
        page = members_page(connection, name, after=None, limit=EXPORT_LIMIT)
    headers = {"Content-Disposition": f'attachment; filename="segment-{name}.csv"'}
    return StreamingResponse(csv_lines(page), media_type="text/csv; charset=utf-8", headers=headers)


@router.post(
    "/{name}/export/webhook", response_model=WebhookOut, summary="POST members to a webhook"
)
def export_webhook(_principal: Writer, service: Service, name: Name, body: WebhookIn) -> WebhookOut:
    segment = _checked(lambda: service.get(name))
    _checked(lambda: check_webhook_url(body.url, service.settings.webhook_hosts))
    with service.operational.connect() as connection:
        page = members_page(connection, name, after=None, limit=EXPORT_LIMIT)
    try:
        result = post_members(
            body.url,
            segment=name,
            version=segment.version,
            members=page,
            secret=body.secret,
            batch_size=body.batch_size,
            retries=body.retries,
        )
    except WebhookError as error:
        raise ApiError(502, "webhook_failed", str(error)) from None
    return WebhookOut(**result.__dict__)
