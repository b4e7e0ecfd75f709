"""The real-time ingest API: ``POST /v1/track``, ``/v1/identify`` and ``/v1/orders``.

A request is checked item by item, then its items (and its answer) are
appended to the inbox in one durable transaction, and only then answered:
``202`` means the items survive a crash of the server. The background drainer
moves them into the warehouse through the same pipeline files take. Bodies are
read here rather than by FastAPI so that a bad item is refused alone, by
index, instead of failing the whole request; the OpenAPI document still
describes every field. Limits: ``docs/api.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.responses import JsonResponse
from perennial.api.security import require
from perennial.api.state import AppState, BackgroundService, State
from perennial.api.track_items import ENDPOINTS, Endpoint, IngestAnswer, prepare_items
from perennial.api.track_models import MAX_ITEMS
from perennial.config import Settings
from perennial.ingest.drain import DrainReport, InboxDrainer
from perennial.ingest.inbox import InboxEntry, StoredAnswer, find_answer
from perennial.ingest.inbox_writer import InboxWriter
from perennial.ingest.record_checker import RecordChecker

__all__ = ["identify", "inbox_writer", "ingest_services", "orders", "router", "track"]

Sender = Annotated[Principal, Depends(require(Role.OPERATOR))]

_MAX_KEY_LENGTH = 255
_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 413, 415, 422, 503)
}

router = APIRouter(prefix="/v1", tags=["ingest"], responses=_RESPONSES)


_Service = TypeVar("_Service")


def _service(state: AppState, kind: type[_Service]) -> _Service:
    for service in state.services:
        if isinstance(service, kind):
            return service
    raise ApiError(503, "unavailable", "this server does not accept ingest requests")


def inbox_writer(state: AppState) -> InboxWriter:
    """The app's inbox writer (one of its background services)."""
    return _service(state, InboxWriter)


def _openapi(endpoint: Endpoint) -> dict[str, Any]:
    item = _inlined(endpoint.model.model_json_schema())
    batch = {
        "type": "object",
        "title": f"{endpoint.model.__name__} batch",
        "properties": {
            endpoint.batch_key: {
                "type": "array",
                "items": item,
                "minItems": 1,
                "maxItems": MAX_ITEMS,
            }
        },
        "required": [endpoint.batch_key],
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [batch, item]}}},
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeat a request with the same key and it is stored once; "
                "the first answer is returned again (kept 24 h).",
                "schema": {"type": "string", "pattern": f"^[ -~]{{1,{_MAX_KEY_LENGTH}}}$"},
            }
        ],
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined (OpenAPI resolves refs elsewhere)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_DESCRIPTIONS = {
    "track": 'Behaviour events, one or a batch (`{"events": [...]}`).',
    "identify": 'Customer attributes and identifiers, one or a batch (`{"customers": [...]}`).',
    "orders": 'Orders with their lines, one or a batch (`{"orders": [...]}`).',
}


def _route(name: str) -> dict[str, Any]:
    return {
        "status_code": 202,
        "response_model": IngestAnswer,
        "openapi_extra": _openapi(ENDPOINTS[name]),
        "description": _DESCRIPTIONS[name]
        + " Answers 202 once the accepted items are durable; refused items are listed by "
        "index (and quarantined). A single item that is refused gets a 422 instead.",
    }


@router.post("/track", **_route("track"))
async def track(request: Request, state: State, sender: Sender) -> JsonResponse:
    return await _receive(request, state, sender, ENDPOINTS["track"])


@router.post("/identify", **_route("identify"))
async def identify(request: Request, state: State, sender: Sender) -> JsonResponse:
    return await _receive(request, state, sender, ENDPOINTS["identify"])


@router.post("/orders", **_route("orders"))
async def orders(request: Request, state: State, sender: Sender) -> JsonResponse:
    return await _receive(request, state, sender, ENDPOINTS["orders"])


async def _receive(
    request: Request, state: AppState, sender: Principal, endpoint: Endpoint
) -> JsonResponse:
    received_at = datetime.now(UTC)
    _require_json(request)
    key = _idempotency_key(request)
    body = await request.body()
    digest = hashlib.sha256(body).hexdigest() if key is not None else None
    if key is not None:
        stored = await run_in_threadpool(_stored_answer, state, sender, endpoint, key)
        if stored is not None:
            return _replay(stored, digest)
    items, single = _items(endpoint, _parsed(body))
    checker = _service(state, RecordChecker)
    prepared = await run_in_threadpool(
        prepare_items, endpoint, items, state.settings, received_at, checker.check
    )
    if single and prepared.first_problem is not None:
        problem = prepared.first_problem
        field = f"body.{problem.field}" if problem.field else "body"
        raise ApiError(422, problem.code, problem.message, field)
    entry = InboxEntry(
        endpoint=endpoint.name,
        principal=sender.subject,
        answer=prepared.answer.model_dump_json(),
        received_at=received_at,
        items=prepared.items,
        idempotency_key=key,
        body_digest=digest,
    )
    try:
        stored = await asyncio.wrap_future(inbox_writer(state).submit(entry))
    except sa.exc.SQLAlchemyError:  # logged by the writer; the transaction rolled back
        message = "the items could not be stored (nothing was kept); retry later"
        raise ApiError(503, "unavailable", message) from None
    if stored.replayed:
        return _replay(stored, digest)
    return JsonResponse(stored.answer.encode(), status_code=202)


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= _MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {_MAX_KEY_LENGTH} printable ASCII characters",
            "header.Idempotency-Key",
        )
    return key


def _stored_answer(
    state: AppState, sender: Principal, endpoint: Endpoint, key: str
) -> StoredAnswer | None:
    with state.engine.connect() as connection:
        return find_answer(connection, sender.subject, endpoint.name, key)


def _replay(stored: StoredAnswer, digest: str | None) -> JsonResponse:
    if stored.body_digest != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a request with another body",
            "header.Idempotency-Key",
        )
    return JsonResponse(
        stored.answer.encode(), status_code=202, headers={"Idempotent-Replayed": "true"}
    )


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None


def _items(endpoint: Endpoint, document: Any) -> tuple[list[Any], bool]:
    """The request's items, and whether it was the single-item form."""
    if not isinstance(document, dict):
        raise ApiError(422, "wrong_type", "the body must be a JSON object", "body")
    key = endpoint.batch_key
    if key not in document:
        return [document], True
    extra = sorted(set(document) - {key})
    if extra:
        message = f"unknown field; a batch has only {key!r}"
        raise ApiError(422, "unknown_field", message, f"body.{extra[0]}")
    items = document[key]
    if not isinstance(items, list):
        raise ApiError(422, "wrong_type", f"{key} must be an array", f"body.{key}")
    if not items:
        raise ApiError(422, "empty", f"{key} must hold at least one item", f"body.{key}")
    if len(items) > MAX_ITEMS:
        message = f"at most {MAX_ITEMS} {key} per request; split the batch"
        raise ApiError(422, "too_many_items", message, f"body.{key}")
    return items, False


def ingest_services(
    settings: Settings,
    engine: Engine,
    *,
    listeners: Sequence[Callable[[DrainReport], None]] = (),
) -> list[BackgroundService]:
    """The record checker, the inbox writer, and the drainer unless
    ``ingest_drain_seconds`` is 0 (``listeners`` hear of every drained batch)."""
    services: list[BackgroundService] = [RecordChecker(settings), InboxWriter(settings)]
    if settings.ingest_drain_seconds > 0:
        services.append(
            InboxDrainer(
                settings,
                engine,
                interval=settings.ingest_drain_seconds,
                max_items=settings.ingest_drain_items,
                listeners=listeners,
            )
        )
    return services
