"""The tasks page (任务): an agent's queue with each customer's card and the outcome form;
for managers the SLA view per team and the breach list: ``/tasks``.

Tasks, the SLA view and the breaches are the API's answers (``GET /v1/tasks``,
``/v1/tasks/sla``, ``/v1/tasks/breaches``), obtained by calling those endpoints'
functions; closing and claiming go through ``POST /v1/tasks/{id}/close`` and ``/claim``
from ``static/tasks.js`` with the session's CSRF token. The customer card shows the
serving store's 360 with phone and e-mail always masked, as lists do (a queue shows many
customers at once); the holder opens the customer's 360, where the masking rule shows
them the number to call and audits it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Role
from perennial.api.customer_views import Customer360, render_360
from perennial.api.errors import ApiError
from perennial.api.routes.task_sla import breaches, sla
from perennial.api.routes.tasks import task_list
from perennial.api.serving import read, serving_of
from perennial.api.state import app_state
from perennial.api.task_models import BreachOut, TaskOut, TeamSlaOut
from perennial.serving.board import load_board
from perennial.serving.customers import customer_record, document_codec
from perennial.tasks.actors import MANAGER_ROLES
from perennial.tasks.records import Outcome
from perennial.tasks.teams import teams_of
from perennial.web.customer_card import Fact, key_facts
from perennial.web.customers_page import customer_url
from perennial.web.formatting import Formatter
from perennial.web.i18n import language_of, translate
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = [
    "CARD_FACTS",
    "BreachRow",
    "CustomerCard",
    "QueueItem",
    "SlaRow",
    "router",
    "tasks_page",
]

router = APIRouter(include_in_schema=False)
Worker = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT))]
Translate = Callable[..., str]
CARD_FACTS = 4
"""Key facts a card shows (the 360 has them all)."""
_QUEUE_LIMIT = 200
_MISSING = "—"


@dataclass(frozen=True, slots=True)
class CustomerCard:
    customer_id: str
    url: str
    name: str | None
    stage: str
    tier: str
    phone: str
    email: str
    facts: tuple[Fact, ...]


@dataclass(frozen=True, slots=True)
class QueueItem:
    task: TaskOut
    card: CustomerCard | None
    """``None``: the customer is not in the serving store (yet)."""
    due: str
    can_claim: bool
    can_close: bool


@dataclass(frozen=True, slots=True)
class SlaRow:
    sla: TeamSlaOut
    breach_rate: str


@dataclass(frozen=True, slots=True)
class BreachRow:
    breach: BreachOut
    recorded: str
    due: str


@router.get("/tasks")
def tasks_page(request: Request, viewer: Worker) -> Response:
    language = language_of(request)
    t = partial(translate, language)
    state = app_state(request)
    fmt = Formatter(language, state.settings.default_timezone)
    principal = viewer.principal
    manager = principal.has_any(MANAGER_ROLES)
    visible = task_list(principal, state, status="active", limit=_QUEUE_LIMIT).items
    with state.engine.connect() as connection:
        teams = teams_of(connection, viewer.user.user_id)
    mine = [task for task in visible if _in_my_queue(task, viewer.user.user_id, teams)]
    others = [task for task in visible if task not in mine] if manager else []
    cards = _cards(request, [task.customer_id for task in mine], fmt, t)
    queue = [
        QueueItem(
            task,
            cards.get(task.customer_id),
            fmt.datetime(task.due_at) if task.due_at else _MISSING,
            can_claim=task.assignee_id is None,
            can_close=True,
        )
        for task in mine
    ]
    values: dict[str, Any] = {
        "queue": queue,
        "manager": manager,
        "outcomes": [outcome.value for outcome in Outcome],
        "others": [
            (task, fmt.datetime(task.due_at) if task.due_at else _MISSING) for task in others
        ],
    }
    if manager:
        view = sla(principal, state)
        values["sla_days"] = view.days
        values["sla_rows"] = [
            SlaRow(row, _MISSING if row.breach_rate is None else fmt.percent(row.breach_rate))
            for row in view.teams
        ]
        values["breaches"] = [
            BreachRow(
                item,
                fmt.datetime(item.recorded_at),
                fmt.datetime(item.task.due_at) if item.task.due_at else _MISSING,
            )
            for item in breaches(principal, state, limit=20).items
        ]
    return render_page(request, "tasks.html", viewer=viewer, title_key="tasks.title", **values)


def _in_my_queue(task: TaskOut, user_id: str, teams: frozenset[str]) -> bool:
    """Held by the viewer, or waiting unassigned in one of their teams."""
    if task.assignee_id is None:
        return task.team in teams
    return task.assignee_id == user_id


def _cards(
    request: Request, customer_ids: Iterable[str], fmt: Formatter, t: Translate
) -> dict[str, CustomerCard]:
    """The customers' cards from the serving store, contact masked; none when it is not
    built (the tasks still show, without cards)."""
    serving = serving_of(request)
    cards: dict[str, CustomerCard] = {}
    try:
        with read():
            reading = serving.reading()
            codec = serving.cached("documents", document_codec, reading)
            board = serving.cached("board", load_board, reading)
            for customer_id in dict.fromkeys(customer_ids):
                record = customer_record(reading.connection, customer_id, codec)
                if record is not None:
                    view = Customer360.model_validate_json(render_360(record, [], 0, False))
                    cards[customer_id] = _card(view, fmt, t, board.main_currency or "CNY")
    except ApiError:
        return {}
    return cards


def _card(view: Customer360, fmt: Formatter, t: Translate, currency: str) -> CustomerCard:
    chinese = fmt.language == "zh-CN"
    stage = view.stage.label_zh if chinese else view.stage.label_en
    tier = view.value_tier.label_zh if chinese else view.value_tier.label_en
    facts = key_facts(view.features, fmt, currency, (t("value.yes"), t("value.no")))
    return CustomerCard(
        customer_id=view.customer_id,
        url=customer_url(view.customer_id),
        name=view.name,
        stage=stage or view.stage.key or _MISSING,
        tier=tier or _MISSING,
        phone=view.contact.phone or _MISSING,
        email=view.contact.email or _MISSING,
        facts=tuple(facts[:CARD_FACTS]),
    )
