"""What the track API accepts: one model per item kind, and the limits that bound them.

Items use the canonical column names of the tables they feed (``event_type``,
``ts``, ``placed_at``, ...), so a field means the same in a file and in a
request. Types are strict (``"3"`` is not a number, ``1`` is not a string)
and unknown fields are refused. Timestamps are ISO 8601 with an offset; a
missing one means "when the server received the request". These models only
check shape; the values then go through ingest's own validation
(:func:`perennial.ingest.records.check_records`), which files go through too.
Limits are documented in ``docs/api.md``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from perennial.ingest.records import timestamp_text
from perennial.schema.tables import OrderStatus

__all__ = [
    "MAX_ARRAY_ITEMS",
    "MAX_DEPTH",
    "MAX_EXTERNAL_IDS",
    "MAX_ITEMS",
    "MAX_KEY_LENGTH",
    "MAX_LINES_PER_ORDER",
    "MAX_PROPERTIES",
    "MAX_TEXT_LENGTH",
    "IdentifyCall",
    "JsonProblem",
    "Order",
    "OrderLine",
    "TrackEvent",
    "amount_text",
    "json_problem",
]

MAX_ITEMS = 1000
"""Events, identify calls or orders in one request."""
MAX_LINES_PER_ORDER = 200
MAX_PROPERTIES = 100
"""Keys in an event's ``properties`` (or a customer's ``attributes``), counted at every depth."""
MAX_DEPTH = 5
"""Nesting of ``properties``: ``{"a": 1}`` is depth 1, ``{"a": {"b": 1}}`` depth 2."""
MAX_ARRAY_ITEMS = 100
MAX_KEY_LENGTH = 128
MAX_TEXT_LENGTH = 4096
"""Characters in any one string inside ``properties`` or ``attributes``."""
MAX_EXTERNAL_IDS = 20

_ID_LENGTH = 256
_LABEL_LENGTH = 1024


def _timestamp(text: str) -> str:
    """ISO 8601 with an offset, returned as the UTC text records carry."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PydanticCustomError(
            "invalid_timestamp", "not an ISO 8601 timestamp (2025-03-01T10:00:00+08:00)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "timestamp_without_offset",
            "the timestamp needs a UTC offset (+08:00 or Z): without one its instant is unknown",
        )
    return timestamp_text(parsed)


Id = Annotated[str, StringConstraints(min_length=1, max_length=_ID_LENGTH)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=_LABEL_LENGTH)]
Timestamp = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_timestamp),
    Field(json_schema_extra={"format": "date-time"}),
]
Amount = Annotated[
    int | float | Annotated[str, StringConstraints(min_length=1, max_length=40)],
    Field(description='A decimal number, as a JSON number or a string (`"19.90"`).'),
]
JsonObject = Annotated[
    dict[str, Any],
    Field(
        description=f"At most {MAX_PROPERTIES} keys in all, nested at most {MAX_DEPTH} deep.",
        json_schema_extra={"maxProperties": MAX_PROPERTIES},
    ),
]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_SOMEONE = ConfigDict(
    json_schema_extra={"anyOf": [{"required": ["customer_id"]}, {"required": ["anonymous_id"]}]}
)
"""Documents the rule ingest enforces: an item names a customer, a device, or both."""


class TrackEvent(_Item):
    """One behaviour event (a row of ``events``)."""

    model_config = _SOMEONE

    event_id: Id | None = Field(
        default=None,
        description="Your id for the event: a re-sent id is stored once. Without one, "
        "an event identical in every field to a stored one counts as a re-send.",
    )
    customer_id: Id | None = None
    anonymous_id: Id | None = Field(default=None, description="Device or cookie id.")
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    ts: Timestamp | None = Field(default=None, description="Default: when the server got it.")
    properties: JsonObject | None = None


class IdentifyCall(_Item):
    """Who someone is: a customer's attributes and identifiers, or an anonymous visitor's."""

    model_config = _SOMEONE

    customer_id: Id | None = Field(
        default=None, description="Given: the customer's row is created or updated."
    )
    anonymous_id: Id | None = Field(
        default=None, description="Given: the device joins the person the other ids name."
    )
    event_id: Id | None = None
    ts: Timestamp | None = None
    created_at: Timestamp | None = None
    name: Label | None = None
    phone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = None
    birthday: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    gender: Label | None = None
    region: Label | None = None
    acquisition_channel: Label | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    wechat_openid: Id | None = None
    wechat_unionid: Id | None = None
    consent_email: bool | None = None
    consent_sms: bool | None = None
    consent_push: bool | None = None
    consent_wechat: bool | None = None
    external_ids: (
        Annotated[
            dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Id],
            Field(max_length=MAX_EXTERNAL_IDS),
        ]
        | None
    ) = Field(default=None, description='Ids in your other systems: `{"crm": "C-1001"}`.')
    attributes: JsonObject | None = Field(
        default=None, description="Any further attributes; merged key by key with stored ones."
    )


class OrderLine(_Item):
    item_id: Id | None = None
    product_id: Id
    category: Label | None = None
    quantity: int
    unit_price: Amount | None = None


class Order(_Item):
    """An order and its lines; a re-sent ``order_id`` updates the order (e.g. a refund)."""

    order_id: Id
    customer_id: Id
    placed_at: Timestamp | None = Field(default=None, description="Default: when received.")
    amount: Amount
    currency: Annotated[str, StringConstraints(min_length=1, max_length=8)] = Field(
        description="ISO 4217 code.", json_schema_extra={"pattern": "^[A-Za-z]{3}$"}
    )
    status: Annotated[str, StringConstraints(min_length=1, max_length=16)] = Field(
        description="paid, refunded or cancelled.",
        json_schema_extra={"enum": [s.value for s in OrderStatus]},
    )
    item_count: int | None = None
    coupon_code: Label | None = None
    channel: Label | None = None
    items: Annotated[list[OrderLine], Field(max_length=MAX_LINES_PER_ORDER)] = Field(
        default_factory=list
    )


def amount_text(amount: int | float | str) -> str:
    """An amount as ingest reads it; floats by their shortest decimal form (19.9, not 1e-05)."""
    if isinstance(amount, float):
        return format(Decimal(repr(amount)), "f")
    return str(amount)


class JsonProblem(BaseModel):
    path: str
    code: str
    message: str


def json_problem(value: dict[str, Any], field: str) -> JsonProblem | None:
    """The first limit a free-form object (``properties``, ``attributes``) breaks, if any."""
    counter = [0]
    return _walk(value, field, 1, counter)


def _walk(value: Any, path: str, depth: int, counter: list[int]) -> JsonProblem | None:
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        return JsonProblem(
            path=path, code="too_deep", message=f"nested deeper than {MAX_DEPTH} levels"
        )
    if isinstance(value, dict):
        return _walk_object(value, path, depth, counter)
    if isinstance(value, list):
        if len(value) > MAX_ARRAY_ITEMS:
            message = f"more than {MAX_ARRAY_ITEMS} elements"
            return JsonProblem(path=path, code="too_many_items", message=message)
        for index, element in enumerate(value):
            found = _walk(element, f"{path}.{index}", depth + 1, counter)
            if found is not None:
                return found
        return None
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        message = f"longer than {MAX_TEXT_LENGTH} characters"
        return JsonProblem(path=path, code="too_long", message=message)
    return None


def _walk_object(
    value: dict[str, Any], path: str, depth: int, counter: list[int]
) -> JsonProblem | None:
    for key, element in value.items():
        counter[0] += 1
        if counter[0] > MAX_PROPERTIES:
            message = f"more than {MAX_PROPERTIES} keys in all"
            return JsonProblem(path=path, code="too_many_properties", message=message)
        if len(key) > MAX_KEY_LENGTH:
            message = f"a key is longer than {MAX_KEY_LENGTH} characters"
            return JsonProblem(path=path, code="too_long", message=message)
        found = _walk(element, f"{path}.{key}", depth + 1, counter)
        if found is not None:
            return found
    return None
