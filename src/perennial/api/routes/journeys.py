"""``/v1/journeys``: definitions, validation, publish and status, manual enrolment, runs,
per-step counts, sends and suppressions, message previews; ``/v1/unsubscribe`` for links.

Every role may read; operators (and admins) save, publish, pause, resume, archive
and enrol. A document with any problem is answered 422 with every problem and
its key path; nothing of it is saved. The unsubscribe endpoints take no
credentials: the signed token in the link is the credential (RFC 8058 one-click
POST from mail clients, GET from a browser), and the opt-out is recorded at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.security import require
from perennial.api.state import State
from perennial.channels.consent import record_opt_out
from perennial.channels.setup import signing_secret
from perennial.channels.templates import TemplateProblem
from perennial.channels.unsubscribe import InvalidToken, read_token
from perennial.journeys.loading import JourneyInvalid, parse_journey
from perennial.journeys.repository import JourneyStateError, SavedJourney, UnknownJourney
from perennial.journeys.service import JourneyService

__all__ = [
    "DocumentIn",
    "EnrolIn",
    "EnrolOut",
    "JourneyOut",
    "PreviewIn",
    "PreviewOut",
    "ProblemOut",
    "PublishedOut",
    "RunOut",
    "SendOut",
    "StepOut",
    "ValidateOut",
    "archive",
    "enrol",
    "journey_service",
    "list_all",
    "pause",
    "preview",
    "publish",
    "resume",
    "router",
    "runs",
    "save_draft",
    "sends",
    "show",
    "steps",
    "unsubscribe_get",
    "unsubscribe_post",
    "unsubscribe_router",
    "validate",
]

router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
unsubscribe_router = APIRouter(tags=["journeys"], responses={404: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Writer = Annotated[Principal, Depends(require(Role.OPERATOR))]
Name = Annotated[
    str, Path(max_length=100, pattern=r"^[a-z0-9][a-z0-9_\-]{0,99}$", description="Journey name.")
]


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any] = Field(description="The journey document (its JSON form).")


class ProblemOut(BaseModel):
    path: str = Field(description="The key in the document, e.g. steps.coupon.next.")
    reason: str


class ValidateOut(BaseModel):
    valid: bool
    problems: list[ProblemOut]


class JourneyOut(BaseModel):
    name: str
    title: str
    status: Literal["draft", "active", "paused", "archived"]
    live_version: int | None
    latest_version: int
    updated_at: datetime
    updated_by: str
    runs: dict[str, int] = Field(description="Runs by status.")
    document: dict[str, Any] | None = Field(default=None, description="The latest version.")


class PublishedOut(BaseModel):
    name: str
    version: int
    status: str


class StepOut(BaseModel):
    step: str
    entered: int
    waiting: int
    sent: int
    suppressed: int
    failed: int
    converted: int
    suppressed_by: dict[str, int]


class RunOut(BaseModel):
    run_id: str
    customer_id: str
    version: int
    status: str
    step: str | None
    variant: str | None
    entered_at: datetime
    updated_at: datetime
    due_at: datetime | None


class SendOut(BaseModel):
    effect_key: str
    customer_id: str
    step: str
    channel: str
    status: str
    reason: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    done_at: datetime | None


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        min_length=1, max_length=100_000
    )
    occurrence: str = Field(
        min_length=1,
        max_length=100,
        description="Names this enrolment: repeating it enrols no one twice.",
    )


class EnrolOut(BaseModel):
    entered: int
    holdout: int
    refused: dict[str, int]


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any]
    step: str
    customer_id: str


class PreviewOut(BaseModel):
    customer_id: str
    channel: str
    locale: str
    subject: str | None
    text: str
    html: str | None


def journey_service(state: State) -> JourneyService:
    return JourneyService(state.settings, state.engine)


Service = Annotated[JourneyService, Depends(journey_service)]


def _invalid(error: JourneyInvalid) -> ApiError:
    first = error.problems[0] if error.problems else None
    return ApiError(
        422, "invalid_journey", str(error), f"document.{first.path}" if first else "document"
    )


def _out(
    saved: SavedJourney, runs: dict[str, int], document: dict[str, Any] | None = None
) -> JourneyOut:
    return JourneyOut(
        name=saved.name,
        title=saved.title,
        status=saved.status,
        live_version=saved.live_version,
        latest_version=saved.latest_version,
        updated_at=saved.updated_at,
        updated_by=saved.updated_by,
        runs=runs,
        document=document,
    )


@router.get("", response_model=list[JourneyOut], summary="Every journey with its status and runs")
def list_all(service: Service, _: Reader, archived: bool = False) -> list[JourneyOut]:
    totals = service.totals()
    return [_out(saved, totals.get(saved.name, {})) for saved in service.saved(archived=archived)]


@router.post("/validate", response_model=ValidateOut, summary="Check a document, save nothing")
def validate(body: DocumentIn, service: Service, _: Reader) -> ValidateOut:
    problems = service.problems(body.document, source="document")
    return ValidateOut(
        valid=not problems,
        problems=[ProblemOut(path=p.path, reason=p.reason) for p in problems],
    )


@router.post("", response_model=PublishedOut, status_code=201, summary="Save a draft version")
def save_draft(body: DocumentIn, service: Service, principal: Writer) -> PublishedOut:
    try:
        journey = parse_journey(body.document, "document")
        version = service.save_draft(journey, actor=principal.subject)
    except JourneyInvalid as error:
        raise _invalid(error) from None
    except JourneyStateError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return PublishedOut(
        name=journey.journey, version=version, status=service.get(journey.journey).status
    )


@router.get("/{name}", response_model=JourneyOut, summary="One journey and its latest document")
def show(name: Name, service: Service, _: Reader) -> JourneyOut:
    try:
        saved = service.get(name)
        document = service.document(name).model_dump(mode="json", by_alias=True, exclude_none=True)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    return _out(saved, service.totals().get(name, {}), document)


@router.post("/{name}/publish", response_model=PublishedOut, summary="Make the newest version live")
def publish(name: Name, service: Service, principal: Writer) -> PublishedOut:
    try:
        published = service.publish_saved(name, actor=principal.subject)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    except JourneyInvalid as error:
        raise _invalid(error) from None
    except JourneyStateError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return PublishedOut(name=published.name, version=published.version, status=published.status)


def _move(name: str, move: str, service: JourneyService, principal: Principal) -> PublishedOut:
    try:
        status = service.change_status(name, move, actor=principal.subject)
        saved = service.get(name)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    except JourneyStateError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return PublishedOut(
        name=name, version=saved.live_version or saved.latest_version, status=status
    )


@router.post("/{name}/pause", response_model=PublishedOut, summary="Stop entries; hold runs")
def pause(name: Name, service: Service, principal: Writer) -> PublishedOut:
    return _move(name, "pause", service, principal)


@router.post("/{name}/resume", response_model=PublishedOut, summary="Take entries again")
def resume(name: Name, service: Service, principal: Writer) -> PublishedOut:
    return _move(name, "resume", service, principal)


@router.post("/{name}/archive", response_model=PublishedOut, summary="Retire for good")
def archive(name: Name, service: Service, principal: Writer) -> PublishedOut:
    return _move(name, "archive", service, principal)


@router.post("/{name}/enrol", response_model=EnrolOut, summary="Enter customers by hand")
def enrol(name: Name, body: EnrolIn, service: Service, _: Writer) -> EnrolOut:
    try:
        service.get(name)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    counts = service.enroll(name, body.customers, occurrence=body.occurrence)
    return EnrolOut(entered=counts.entered, holdout=counts.holdout, refused=dict(counts.refused))


@router.get("/{name}/steps", response_model=list[StepOut], summary="Per-step counts")
def steps(name: Name, service: Service, _: Reader) -> list[StepOut]:
    try:
        counts = service.steps(name)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    return [StepOut(step=step, **vars(count)) for step, count in sorted(counts.items())]


@router.get("/{name}/runs", response_model=list[RunOut], summary="Runs, by run id")
def runs(
    name: Name,
    service: Service,
    _: Reader,
    status: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RunOut]:
    try:
        rows = service.runs(name, status=status, after=after, limit=limit)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    return [RunOut(**vars(row)) for row in rows]


@router.get("/{name}/sends", response_model=list[SendOut], summary="Sends and suppressions")
def sends(
    name: Name,
    service: Service,
    _: Reader,
    status: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SendOut]:
    try:
        rows = service.sends(name, status=status, after=after, limit=limit)
    except UnknownJourney as error:
        raise ApiError(404, "not_found", str(error)) from None
    return [SendOut(**vars(row)) for row in rows]


@router.post("/preview", response_model=PreviewOut, summary="Render a send step for a customer")
def preview(body: PreviewIn, service: Service, _: Reader) -> PreviewOut:
    try:
        journey = parse_journey(body.document, "document")
        rendered = service.preview(journey, body.step, body.customer_id)
    except JourneyInvalid as error:
        raise _invalid(error) from None
    except TemplateProblem as error:
        raise ApiError(422, "template_error", str(error), f"steps.{body.step}") from None
    return PreviewOut(**vars(rendered))


_DONE_PAGE = (
    "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>已退订 / Unsubscribed</title>"
    "<body><p>已退订，我们不会再通过{channel}向你发送营销消息。</p>"
    "<p>You are unsubscribed: no more marketing messages by {channel}.</p></body></html>"
)


def _unsubscribe(token: str, state: State) -> str:
    try:
        customer_id, channel = read_token(signing_secret(state.settings), token)
    except InvalidToken as error:
        raise ApiError(404, "not_found", f"unknown unsubscribe link: {error}") from None
    with state.engine.begin() as connection:
        record_opt_out(connection, customer_id, channel, at=state.settings.now(), source="link")
    return channel


@unsubscribe_router.post("/v1/unsubscribe/{token}", summary="One-click unsubscribe (RFC 8058)")
def unsubscribe_post(token: Annotated[str, Path(max_length=600)], state: State) -> dict[str, str]:
    return {"unsubscribed": _unsubscribe(token, state)}


@unsubscribe_router.get(
    "/v1/unsubscribe/{token}",
    summary="Unsubscribe (the link in a message): answers an HTML page",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
    response_model=None,
)
def unsubscribe_get(token: Annotated[str, Path(max_length=600)], state: State) -> Response:
    channel = _unsubscribe(token, state)
    return HTMLResponse(_DONE_PAGE.format(channel=channel))
