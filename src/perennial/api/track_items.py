"""From a request's items to inbox rows and the answer, item by item.

Each item is checked for shape (:mod:`perennial.api.track_models`) and limits,
turned into the records of the tables it feeds (an identify call: a customer
row and an ``identify`` event; an order: its header and lines), and those
records are checked by ingest's own validation, all records of a table in one
call. An item with any problem is refused whole (nothing of it is stored
but its quarantine row) and reported by index; the others are unaffected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from perennial.api.track_models import (
    IdentifyCall,
    Order,
    TrackEvent,
    amount_text,
    json_problem,
)
from perennial.config import Settings
from perennial.ingest.identifiers import normalize_email, normalize_phone
from perennial.ingest.inbox import InboxItem
from perennial.ingest.records import RecordProblem, check_records, timestamp_text

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "IngestAnswer",
    "ItemRejection",
    "Prepared",
    "RecordCheck",
    "prepare_items",
]


class RecordCheck(Protocol):
    """Validates records like :func:`check_records`; verdicts by position."""

    def __call__(
        self, records: Sequence[dict[str, Any]], table: str, *, now: datetime
    ) -> list[RecordProblem]: ...


class ItemRejection(BaseModel):
    index: int
    field: str | None
    """Path inside the item (``properties.cart.sku``, ``items.2.quantity``)."""
    code: str
    message: str


class IngestAnswer(BaseModel):
    accepted: int
    """Items stored durably; they reach the warehouse within seconds."""
    rejected: list[ItemRejection]
    """Items refused, by index in the request; they are kept in the quarantine."""


@dataclass(frozen=True)
class _Record:
    table: str
    record: dict[str, Any]
    prefix: str = ""
    """Where the record's fields sit in the item (``items.2.`` for an order line)."""


@dataclass(frozen=True)
class Endpoint:
    """One ingest endpoint: its name, batch key, item model and the records an item makes."""

    name: str
    batch_key: str
    table: str
    """Where a refused item is quarantined (the table its main record feeds)."""
    model: type[BaseModel]
    records: Callable[[Any, datetime, Settings], list[_Record]]


@dataclass(frozen=True)
class Prepared:
    items: tuple[InboxItem, ...]
    answer: IngestAnswer
    first_problem: ItemRejection | None = None
    """For the single-item form: why its only item was refused."""


@dataclass
class _Verdicts:
    records: dict[int, list[_Record]] = field(default_factory=dict)
    rejected: dict[int, ItemRejection] = field(default_factory=dict)

    def refuse(self, index: int, field_path: str | None, code: str, message: str) -> None:
        if index not in self.rejected:
            self.rejected[index] = ItemRejection(
                index=index, field=field_path, code=code, message=message
            )
            self.records.pop(index, None)


def prepare_items(
    endpoint: Endpoint,
    items: list[Any],
    settings: Settings,
    received_at: datetime,
    check: RecordCheck | None = None,
) -> Prepared:
    """Check every item; the inbox rows to append and the answer to give.

    ``check`` validates records like :func:`check_records` (the server passes its
    :class:`~perennial.ingest.record_checker.RecordChecker`, which groups requests).
    """
    verdicts = _Verdicts()
    for index, item in enumerate(items):
        _shape(endpoint, index, item, settings, received_at, verdicts)
    _derive_keys(verdicts)

    def direct(
        records: Sequence[dict[str, Any]], table: str, *, now: datetime
    ) -> list[RecordProblem]:
        return check_records(records, table, settings, now=now)

    _validate(verdicts, check or direct, received_at)
    inbox: list[InboxItem] = []
    for index, item in enumerate(items):
        refusal = verdicts.rejected.get(index)
        if refusal is None:
            inbox.extend(
                InboxItem(r.table, index, orjson.dumps(_without_nulls(r.record)).decode())
                for r in verdicts.records[index]
            )
        else:
            raw = orjson.dumps(item).decode()
            reason = f"{refusal.field}: {refusal.message}" if refusal.field else refusal.message
            inbox.append(InboxItem(endpoint.table, index, raw, refusal.field, reason))
    rejected = sorted(verdicts.rejected.values(), key=lambda r: r.index)
    answer = IngestAnswer(accepted=len(items) - len(rejected), rejected=rejected)
    return Prepared(tuple(inbox), answer, rejected[0] if rejected else None)


def _shape(
    endpoint: Endpoint,
    index: int,
    item: Any,
    settings: Settings,
    received_at: datetime,
    verdicts: _Verdicts,
) -> None:
    if not isinstance(item, dict):
        verdicts.refuse(index, None, "wrong_type", "an item must be a JSON object")
        return
    try:
        model = endpoint.model.model_validate(item)
    except ValidationError as error:
        verdicts.refuse(index, *_pydantic_problem(error))
        return
    for name in ("properties", "attributes"):
        value = getattr(model, name, None)
        problem = json_problem(value, name) if isinstance(value, dict) else None
        if problem is not None:
            verdicts.refuse(index, problem.path, problem.code, problem.message)
            return
    try:
        verdicts.records[index] = endpoint.records(model, received_at, settings)
    except _ItemError as error:
        verdicts.refuse(index, error.field, error.code, error.message)


_DERIVED_KEYS = {"events": "event_id", "order_items": "item_id"}


def _derive_keys(verdicts: _Verdicts) -> None:
    """Give records without an id one made of their content (the default time filled in)
    and their occurrence among identical records of this request. A request re-sent with
    the same items (timestamps given) gets the same ids and adds nothing, however the
    drainer batches them; identical items within one request are all kept."""
    seen: dict[bytes, int] = {}
    for index in sorted(verdicts.records):
        for record in verdicts.records[index]:
            key = _DERIVED_KEYS.get(record.table)
            if key is None or record.record.get(key) is not None:
                continue
            content = orjson.dumps(
                [record.table, _without_nulls(record.record)], option=orjson.OPT_SORT_KEYS
            )
            seen[content] = occurrence = seen.get(content, 0) + 1
            digest = hashlib.sha256(content + b"\x1f" + str(occurrence).encode()).hexdigest()
            record.record[key] = "a" + digest[:24]


def _validate(verdicts: _Verdicts, check: RecordCheck, received_at: datetime) -> None:
    """Ingest's validation over all records of each table at once; refuse items with any."""
    by_table: dict[str, list[tuple[int, _Record]]] = {}
    for index, records in verdicts.records.items():
        for record in records:
            by_table.setdefault(record.table, []).append((index, record))
    for table, tagged in by_table.items():
        problems = check([r.record for _, r in tagged], table, now=received_at)
        for problem in problems:
            index, record = tagged[problem.position]
            column = problem.column
            message = problem.reason.removeprefix(f"{column}: ") if column else problem.reason
            path = f"{record.prefix}{column}" if column else None
            verdicts.refuse(index, path, _reason_code(message), message)


_REASON_CODES: tuple[tuple[str, str], ...] = (
    ("unparsable timestamp", "invalid_timestamp"),
    ("timestamp in the future", "timestamp_in_future"),
    ("timestamp before 1900", "timestamp_too_old"),
    ("unparsable date", "invalid_date"),
    ("not a number", "not_a_number"),
    ("negative amount", "negative_amount"),
    ("not a whole number", "not_an_integer"),
    ("negative count", "negative_count"),
    ("not true or false", "not_a_boolean"),
    ("unknown currency", "unknown_currency"),
    ("not one of", "not_allowed"),
    ("unknown IANA time zone", "unknown_timezone"),
    ("invalid phone", "invalid_phone"),
    ("invalid e-mail", "invalid_email"),
    ("missing", "missing"),
    ("neither customer_id nor anonymous_id", "missing_identity"),
)


def _reason_code(reason: str) -> str:
    for prefix, code in _REASON_CODES:
        if reason.startswith(prefix):
            return code
    return "invalid_value"


_PYDANTIC_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "missing",
    "string_too_long": "too_long",
    "string_too_short": "empty",
    "too_long": "too_many_items",
    "invalid_timestamp": "invalid_timestamp",
    "timestamp_without_offset": "timestamp_without_offset",
}


def _pydantic_problem(error: ValidationError) -> tuple[str | None, str, str]:
    errors = error.errors(include_url=False)
    location = _plain(errors[0]["loc"])
    path = ".".join(location) or None
    here = [e for e in errors if _plain(e["loc"]) == location]
    members = [part for e in here for part in e["loc"] if part in _UNION_MEMBERS]
    chosen = next((e for e in here if not str(e["type"]).endswith("_type")), here[0])
    kind = str(chosen["type"])
    if members and kind.endswith("_type"):  # no member of a union took the value
        kinds = " or ".join(dict.fromkeys(_UNION_MEMBERS[m] for m in members))
        return path, "wrong_type", f"Input should be {kinds}"
    fallback = "wrong_type" if kind.endswith("_type") else "invalid_value"
    code = _PYDANTIC_CODES.get(kind, fallback)
    message = "unknown field" if code == "unknown_field" else str(chosen["msg"])
    return path, code, message


def _plain(location: tuple[int | str, ...]) -> list[str]:
    return [str(part) for part in location if part not in _UNION_MEMBERS]


_UNION_MEMBERS = {"int": "an integer", "float": "a number", "constrained-str": "a string"}
"""Pydantic names the member of a union it tried inside error locations (``amount.int``)."""


class _ItemError(Exception):
    def __init__(self, field_path: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path
        self.code = code
        self.message = message


def _without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if value is not None}


def _event_records(event: TrackEvent, received_at: datetime, _settings: Settings) -> list[_Record]:
    record = event.model_dump()
    record["ts"] = event.ts or timestamp_text(received_at)
    return [_Record("events", record)]


_CUSTOMER_FIELDS = (
    "customer_id",
    "created_at",
    "name",
    "phone",
    "email",
    "birthday",
    "gender",
    "region",
    "acquisition_channel",
    "timezone",
    "wechat_openid",
    "wechat_unionid",
    "consent_email",
    "consent_sms",
    "consent_push",
    "consent_wechat",
    "attributes",
)


def _identify_records(
    call: IdentifyCall, received_at: datetime, settings: Settings
) -> list[_Record]:
    """An ``identify`` event always (it carries the identifiers into the identity graph);
    a customer row too when the call names the customer."""
    _check_identifiers(call, settings)
    given = call.model_dump(exclude_none=True)
    traits = {
        k: v for k, v in given.items() if k not in ("customer_id", "anonymous_id", "event_id", "ts")
    }
    event = {
        "event_id": call.event_id,
        "customer_id": call.customer_id,
        "anonymous_id": call.anonymous_id,
        "event_type": "identify",
        "ts": call.ts or timestamp_text(received_at),
        "properties": traits or None,
    }
    records = [_Record("events", event)]
    if call.customer_id is not None:
        customer = {name: getattr(call, name) for name in _CUSTOMER_FIELDS}
        records.insert(0, _Record("customers", customer))
    return records


def _check_identifiers(call: IdentifyCall, settings: Settings) -> None:
    """Phone and e-mail must be valid even when no customer row will check them."""
    if (
        call.phone is not None
        and normalize_phone(call.phone, settings.default_phone_region) is None
    ):
        raise _ItemError("phone", "invalid_phone", f"invalid phone '{call.phone[:60]}'")
    if call.email is not None and normalize_email(call.email) is None:
        raise _ItemError("email", "invalid_email", f"invalid e-mail address '{call.email[:60]}'")


def _order_records(order: Order, received_at: datetime, _settings: Settings) -> list[_Record]:
    placed_at = order.placed_at or timestamp_text(received_at)
    header = order.model_dump(exclude={"items"})
    header["placed_at"] = placed_at
    header["amount"] = amount_text(order.amount)
    records = [_Record("orders", header)]
    for number, line in enumerate(order.items):
        row = line.model_dump()
        row["order_id"] = order.order_id
        row["placed_at"] = placed_at
        if line.unit_price is not None:
            row["unit_price"] = amount_text(line.unit_price)
        records.append(_Record("order_items", row, prefix=f"items.{number}."))
    return records


ENDPOINTS: dict[str, Endpoint] = {
    "track": Endpoint("track", "events", "events", TrackEvent, _event_records),
    "identify": Endpoint("identify", "customers", "customers", IdentifyCall, _identify_records),
    "orders": Endpoint("orders", "orders", "orders", Order, _order_records),
}
