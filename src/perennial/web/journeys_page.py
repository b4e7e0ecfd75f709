"""The journeys pages (旅程): every journey with its status and totals, and one journey's
diagram, runs, sends and suppressions: ``/journeys`` and ``/journeys/{name}``.

Every number is the answer of the ``/v1/journeys`` endpoints, obtained by calling
their functions (as the segments and model pages do), so the page and a program
reading the API agree. The diagram is SVG drawn on the server
(:mod:`perennial.web.journey_graph`). Everyone may look; operators (and admins) also
get the publish, pause, resume and archive buttons, which ``static/journeys.js``
sends to the API with the session's CSRF token. Runs and sends are paged by the
API's own keyset (``after`` the last id shown), ``PAGE_SIZE`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Role
from perennial.api.errors import ApiError
from perennial.api.routes.journeys import (
    JourneyOut,
    RunOut,
    SendOut,
    StepOut,
    journey_service,
    list_all,
    runs,
    sends,
    show,
    steps,
)
from perennial.api.state import app_state
from perennial.journeys.service import JourneyService
from perennial.web.customers_page import customer_url
from perennial.web.error_pages import render_error
from perennial.web.formatting import Formatter
from perennial.web.i18n import CATALOGUE, language_of, translate
from perennial.web.journey_graph import COUNT_KEYS, draw_journey
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = [
    "PAGE_SIZE",
    "RUN_STATUSES",
    "SEND_STATUSES",
    "JourneyRow",
    "RunLine",
    "SendLine",
    "actions_for",
    "journey_page",
    "journey_url",
    "journeys_page",
    "label_or",
    "router",
]

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Translate = Callable[..., str]
PAGE_SIZE = 50
RUN_STATUSES = ("active", "waiting", "completed", "converted", "failed", "holdout")
"""What a run can be (``journey_runs.status``): the runs table's filter offers these."""
SEND_STATUSES = ("pending", "sending", "sent", "suppressed", "dead")
"""What an outbox row can be: the sends table's filter offers these."""
_ONGOING = ("active", "waiting")
_MISSING = "—"
_MAX_KEY = 64


@dataclass(frozen=True, slots=True)
class JourneyRow:
    name: str
    title: str
    url: str
    status: str
    status_label: str
    version: str
    """The live version, and the newer draft when there is one (``v2 · 草稿 v3``)."""
    trigger: str
    ongoing: int
    completed: int
    converted: int
    failed: int
    holdout: int
    sent: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class RunLine:
    run: RunOut
    customer_url: str
    status_label: str
    entered_at: str
    updated_at: str
    due_at: str


@dataclass(frozen=True, slots=True)
class SendLine:
    send: SendOut
    customer_url: str
    status_label: str
    channel_label: str
    reason_label: str
    created_at: str
    done_at: str


def journey_url(name: str) -> str:
    return "/journeys/" + quote(name, safe="")


def label_or(language: str, key: str, fallback: str) -> str:
    """The catalogue's label ``key``, or ``fallback`` for a value no label was written for
    (a reason or channel added to the runtime later shows as its code, not as an error)."""
    labels = CATALOGUE[language]
    return labels[key] if key in labels else fallback


def actions_for(journey: JourneyOut) -> list[str]:
    """The status moves the API would accept now, in the order the buttons show them.

    Publishing is offered for a draft, and for a live journey with a newer saved version;
    archiving for anything not archived yet (it is final).
    """
    if journey.status == "archived":
        return []
    moves = []
    newer = journey.live_version is not None and journey.latest_version > journey.live_version
    if journey.status == "draft" or newer:
        moves.append("publish")
    if journey.status == "active":
        moves.append("pause")
    if journey.status == "paused":
        moves.append("resume")
    moves.append("archive")
    return moves


@router.get("/journeys")
def journeys_page(request: Request, viewer: Reader, archived: bool = False) -> Response:
    language = language_of(request)
    t = partial(translate, language)
    service = journey_service(app_state(request))
    listed = list_all(service, viewer.principal, archived=archived)
    rows = [_row(journey, service, viewer, t) for journey in listed]
    return render_page(
        request,
        "journeys.html",
        viewer=viewer,
        title_key="journeys.title",
        rows=rows,
        archived=archived,
        toggle_url="/journeys" if archived else "/journeys?archived=true",
    )


def _row(journey: JourneyOut, service: JourneyService, viewer: Viewer, t: Translate) -> JourneyRow:
    counts = steps(journey.name, service, viewer.principal)
    document = service.document(journey.name)
    totals = journey.runs
    return JourneyRow(
        name=journey.name,
        title=journey.title,
        url=journey_url(journey.name),
        status=journey.status,
        status_label=t(f"journeys.status.{journey.status}"),
        version=_version(journey, t),
        trigger=t(f"journeys.trigger.{document.trigger.type}"),
        ongoing=sum(totals.get(status, 0) for status in _ONGOING),
        completed=totals.get("completed", 0),
        converted=totals.get("converted", 0),
        failed=totals.get("failed", 0),
        holdout=totals.get("holdout", 0),
        sent=sum(count.sent for count in counts),
        suppressed=sum(count.suppressed for count in counts),
    )


def _version(journey: JourneyOut, t: Translate) -> str:
    if journey.live_version is None:
        return t("journeys.version_draft", version=journey.latest_version)
    if journey.latest_version > journey.live_version:
        return t(
            "journeys.version_with_draft",
            version=journey.live_version,
            draft=journey.latest_version,
        )
    return t("journeys.version", version=journey.live_version)


@router.get("/journeys/{name}")
def journey_page(
    request: Request,
    name: str,
    viewer: Reader,
    status: str | None = None,
    after: str | None = None,
    send_status: str | None = None,
    send_after: str | None = None,
) -> Response:
    language = language_of(request)
    t = partial(translate, language)
    fmt = Formatter(language, app_state(request).settings.default_timezone)
    service = journey_service(app_state(request))
    run_status = status if status in RUN_STATUSES else None
    sent_status = send_status if send_status in SEND_STATUSES else None
    after, send_after = _page_key(after), _page_key(send_after)
    principal = viewer.principal
    try:
        journey = show(name, service, principal)
        counted = steps(name, service, principal)
        run_rows = runs(
            name, service, principal, status=run_status, after=after, limit=PAGE_SIZE + 1
        )
        send_rows = sends(
            name, service, principal, status=sent_status, after=send_after, limit=PAGE_SIZE + 1
        )
    except ApiError as error:
        return render_error(request, error.status)
    document = service.document(name, journey.live_version)
    by_step = {count.step: count for count in counted}
    query = {
        "status": run_status,
        "after": after,
        "send_status": sent_status,
        "send_after": send_after,
    }
    values: dict[str, Any] = {
        "journey": journey,
        "document": document,
        "status_label": t(f"journeys.status.{journey.status}"),
        "version": _version(journey, t),
        "trigger": t(f"journeys.trigger.{document.trigger.type}"),
        "document_version": journey.live_version or journey.latest_version,
        "graph": draw_journey(document, by_step, t),
        "count_keys": COUNT_KEYS,
        "other_steps": [count for count in counted if count.step not in document.steps],
        "suppressions": _suppressions(counted, language),
        "runs": [_run_line(run, fmt) for run in _recent(run_rows, lambda row: row.updated_at)],
        "sends": [_send_line(send, fmt) for send in _recent(send_rows, lambda row: row.created_at)],
        "run_status": run_status,
        "send_status": sent_status,
        "run_statuses": [(value, t(f"journeys.run.{value}")) for value in RUN_STATUSES],
        "send_statuses": [(value, t(f"journeys.send.{value}")) for value in SEND_STATUSES],
        "runs_next": _next(name, query, "after", run_rows, lambda row: row.run_id),
        "runs_first": _url(name, {**query, "after": None}) if after else None,
        "sends_next": _next(name, query, "send_after", send_rows, lambda row: row.effect_key),
        "sends_first": _url(name, {**query, "send_after": None}) if send_after else None,
        "actions": actions_for(journey) if principal.has_any(frozenset({Role.OPERATOR})) else [],
    }
    return render_page(request, "journey.html", viewer=viewer, title_key="journeys.title", **values)


def _suppressions(counted: list[StepOut], language: str) -> list[tuple[str, str, str, int]]:
    """(step, reason code, reason in words, count) for every suppression reason of every step."""
    return [
        (count.step, reason, label_or(language, f"journeys.reason.{reason}", reason), number)
        for count in counted
        for reason, number in sorted(count.suppressed_by.items())
    ]


def _recent(rows: list[Any], moment: Callable[[Any], datetime]) -> list[Any]:
    """One page of rows (the API pages by id), the most recent first."""
    return sorted(rows[:PAGE_SIZE], key=moment, reverse=True)


def _run_line(run: RunOut, fmt: Formatter) -> RunLine:
    return RunLine(
        run=run,
        customer_url=customer_url(run.customer_id),
        status_label=label_or(fmt.language, f"journeys.run.{run.status}", run.status),
        entered_at=fmt.datetime(run.entered_at),
        updated_at=fmt.datetime(run.updated_at),
        due_at=fmt.datetime(run.due_at) if run.due_at and run.status in _ONGOING else _MISSING,
    )


def _send_line(send: SendOut, fmt: Formatter) -> SendLine:
    language = fmt.language
    return SendLine(
        send=send,
        customer_url=customer_url(send.customer_id),
        status_label=label_or(language, f"journeys.send.{send.status}", send.status),
        channel_label=label_or(language, f"journeys.channel.{send.channel}", send.channel),
        reason_label=_reason(send, language),
        created_at=fmt.datetime(send.created_at),
        done_at=fmt.datetime(send.done_at) if send.done_at else _MISSING,
    )


def _reason(send: SendOut, language: str) -> str:
    """Why a message was suppressed, or why it waited (a message sent or pending keeps the
    reason it was deferred for, such as quiet hours)."""
    if not send.reason:
        return _MISSING
    reason = label_or(language, f"journeys.reason.{send.reason}", send.reason)
    if send.status in ("sent", "pending", "sending"):
        return translate(language, "journeys.deferred_for", reason=reason)
    return reason


def _next(
    name: str,
    query: dict[str, str | None],
    key: str,
    rows: list[Any],
    last_id: Callable[[Any], str],
) -> str | None:
    """The link to the page after ``rows`` (asked for one more than a page: that extra row
    says there is a next page)."""
    if len(rows) <= PAGE_SIZE:
        return None
    return _url(name, {**query, key: last_id(rows[PAGE_SIZE - 1])})


def _page_key(value: str | None) -> str | None:
    """A paging key as the API admits it (ids are at most 64 characters); else the first page."""
    return value if value and len(value) <= _MAX_KEY else None


def _url(name: str, query: dict[str, str | None]) -> str:
    kept = {key: value for key, value in query.items() if value}
    return journey_url(name) + ("?" + urlencode(kept) if kept else "")
