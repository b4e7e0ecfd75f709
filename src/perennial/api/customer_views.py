"""What the customer endpoints answer: response models, masking, and the 360's bytes.

The 360 document is rendered at refresh (:mod:`perennial.serving.documents`);
here it is completed per request with what depends on the caller (phone and
e-mail masked or not, identities, the first timeline page) by splicing bytes,
not by building and validating models: the models below describe those bytes
for OpenAPI, and the tests validate real responses against them (every model
forbids unknown keys, so the two cannot drift apart silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from perennial.access.masking import mask_email, mask_phone
from perennial.api.pagination import encode_cursor
from perennial.lifecycle.stage_model import KpiRole
from perennial.serving.customers import CustomerRecord, CustomerSummary, TimelineRow
from perennial.serving.documents import CONTACT_KEYS

__all__ = [
    "ChurnRisk",
    "Consent",
    "Contact",
    "Customer360",
    "CustomerDetails",
    "CustomerListItem",
    "CustomerPage",
    "EventEntry",
    "FeatureValue",
    "Identity",
    "NextOrder",
    "OrderEntry",
    "OrderLine",
    "Predictions",
    "Replenishment",
    "RfmView",
    "SearchHitView",
    "SearchResults",
    "StageChange",
    "StageNow",
    "TimelineEntry",
    "TimelinePage",
    "ValueTierView",
    "has_contact",
    "list_item",
    "mask_contact",
    "render_360",
    "render_timeline",
]

_STRICT = ConfigDict(extra="forbid")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FeatureValue = str | int | float | bool | None
"""A feature's value: numbers, text, and instants as ISO 8601 text."""


class Contact(BaseModel):
    model_config = _STRICT
    phone: str | None = Field(description="E.164; masked (``+86138****5678``) unless visible.")
    email: str | None = Field(description="Masked (``a***@example.com``) unless visible.")
    masked: bool = Field(description="Whether phone and e-mail were masked for this caller.")


class Identity(BaseModel):
    model_config = _STRICT
    type: str = Field(description="phone, email, anonymous_id, wechat_openid, external_id, ...")
    value: str = Field(description="Phone and e-mail values are masked like the contact.")
    first_seen_at: datetime | None


class StageNow(BaseModel):
    model_config = _STRICT
    key: str | None = Field(description="The stage's key; null when no stage rule matched.")
    label_en: str | None
    label_zh: str | None
    kpi: KpiRole | None = Field(description="The board's KPI card the stage counts toward.")
    since: date | None = Field(
        description="Day the customer entered the stage; null when before the stage history."
    )


class RfmView(BaseModel):
    model_config = _STRICT
    r: int | None
    f: int | None
    m: int | None
    fm: int | None
    code: str | None
    segment: str | None
    segment_label_en: str | None
    segment_label_zh: str | None


class ValueTierView(BaseModel):
    model_config = _STRICT
    key: str | None = Field(description="top_1, top_10, top_50 or rest.")
    label_en: str | None
    label_zh: str | None


class Consent(BaseModel):
    model_config = _STRICT
    email: bool | None
    sms: bool | None
    push: bool | None
    wechat: bool | None


class CustomerDetails(BaseModel):
    model_config = _STRICT
    created_at: datetime | None
    birthday: date | None
    gender: str | None
    region: str | None
    acquisition_channel: str | None
    timezone: str | None
    consent: Consent


class StageChange(BaseModel):
    model_config = _STRICT
    day: date
    from_stage: str | None = Field(description="Null: not known, or no stage, the day before.")
    to_stage: str | None


class OrderLine(BaseModel):
    model_config = _STRICT
    product_id: str
    category: str | None
    quantity: int
    unit_price: str | None = Field(description="Decimal text, in the order's currency.")


class OrderEntry(BaseModel):
    model_config = _STRICT
    kind: Literal["order"]
    id: str
    at: datetime
    status: str
    amount: str = Field(description="Decimal text, in ``currency``.")
    currency: str
    item_count: int | None
    channel: str | None
    coupon_code: str | None
    lines: list[OrderLine]


class EventEntry(BaseModel):
    model_config = _STRICT
    kind: Literal["event"]
    id: str
    at: datetime
    type: str
    anonymous_id: str | None
    properties: dict[str, Any] | None = Field(
        description="As ingested; top-level phone and email are masked like the contact."
    )


TimelineEntry = Annotated[OrderEntry | EventEntry, Field(discriminator="kind")]


class TimelinePage(BaseModel):
    model_config = _STRICT
    items: list[TimelineEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page.")


class ChurnRisk(BaseModel):
    """The promoted churn model's view of the customer (``perennial predict``)."""

    model_config = _STRICT
    probability: float = Field(description="Calibrated probability of churning in the horizon.")
    risk_band: str = Field(description="low, medium, high or critical.")
    percentile: float = Field(description="Share of scored customers at or below, 0-100.")
    reasons_en: list[str] = Field(description="Up to three reasons, strongest first.")
    reasons_zh: list[str]
    model_version: str | None


class NextOrder(BaseModel):
    model_config = _STRICT
    expected_on: date = Field(description="Local day of the expected next order.")
    earliest: date | None = Field(description="Start of the 80 % prediction interval.")
    latest: date | None = Field(description="End of the 80 % prediction interval.")
    probability_30d: float | None = Field(
        description="Chance of an order within 30 days (times P(alive))."
    )


class Replenishment(BaseModel):
    model_config = _STRICT
    category: str = Field(description="The product category due to be bought again.")
    opens_on: date = Field(description="Local day its consumption cycle opens the window.")


class Predictions(BaseModel):
    """Model outputs as of ``as_of``; a part is null when its model could not run."""

    model_config = _STRICT
    as_of: datetime
    p_alive: float | None = Field(description="BG/NBD probability that the customer is active.")
    expected_purchases_90d: float | None
    expected_purchases_12m: float | None
    expected_average_spend: float | None = Field(description="Gamma-Gamma expected spend.")
    clv_12m: float | None = Field(description="Discounted 12-month customer lifetime value.")
    churn: ChurnRisk | None
    next_order: NextOrder | None
    replenishment: Replenishment | None = Field(
        description="The next category window to open, on or after the as-of."
    )


class Customer360(BaseModel):
    """One customer as operations, sales and customer service see them."""

    model_config = _STRICT
    customer_id: str
    name: str | None
    as_of: datetime = Field(description="The instant the profile (features, RFM, stage) is as of.")
    model: str = Field(description="The stage model of ``stage`` and ``stage_history``.")
    stage: StageNow
    rfm: RfmView
    value_tier: ValueTierView
    features: dict[str, FeatureValue]
    details: CustomerDetails
    attributes: dict[str, Any]
    stage_history: list[StageChange] = Field(description="Transitions, newest first.")
    predictions: Predictions | None = Field(
        description="Null until `perennial predict` has run for this customer."
    )
    contact: Contact
    identities: list[Identity]
    timeline: TimelinePage


class CustomerListItem(BaseModel):
    """A customer in a list or search result; phone and e-mail are always masked there."""

    model_config = _STRICT
    customer_id: str
    name: str | None
    stage: str | None
    stage_label_en: str | None
    stage_label_zh: str | None
    rfm_segment: str | None
    value_tier: str | None
    monetary: float = Field(description="Paid spend to the profile's as-of (monetary_total).")
    last_order_at: datetime | None
    phone: str | None
    email: str | None


class CustomerPage(BaseModel):
    """A page of the customer list (the shape of :class:`perennial.api.pagination.Page`)."""

    model_config = _STRICT
    items: list[CustomerListItem]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page.")


class SearchHitView(CustomerListItem):
    matched_on: list[str] = Field(description="customer_id, phone, email, name, external_id, ...")


class SearchResults(BaseModel):
    model_config = _STRICT
    items: list[SearchHitView]


def has_contact(record: CustomerRecord) -> bool:
    """Whether the 360 of ``record`` shows a phone or an e-mail (its own or an identity's)."""
    if record.phone or record.email:
        return True
    return any(f'"type":"{key}"'.encode() in record.identities for key in CONTACT_KEYS)


def mask_contact(kind: str, value: str) -> str:
    return mask_phone(value) if kind == "phone" else mask_email(value)


def list_item(summary: CustomerSummary, labels: dict[str, tuple[str, str]]) -> CustomerListItem:
    """A summary row as a list item, contact details masked."""
    label = labels.get(summary.stage or "")
    return CustomerListItem(
        customer_id=summary.customer_id,
        name=summary.name,
        stage=summary.stage,
        stage_label_en=label[0] if label else None,
        stage_label_zh=label[1] if label else None,
        rfm_segment=summary.rfm_segment,
        value_tier=summary.value_tier,
        monetary=summary.monetary,
        last_order_at=None
        if summary.last_order_at is None
        else _EPOCH + timedelta(microseconds=summary.last_order_at),
        phone=None if summary.phone is None else mask_phone(summary.phone),
        email=None if summary.email is None else mask_email(summary.email),
    )


def render_timeline(rows: Sequence[TimelineRow], limit: int, visible: bool) -> bytes:
    """``{"items": [...], "next_cursor": ...}`` from up to ``limit + 1`` rows."""
    page = rows[:limit]
    cursor = encode_cursor([page[-1].at, page[-1].item_key]) if len(rows) > limit else None
    items = [orjson.Fragment(_timeline_body(row, visible)) for row in page]
    return orjson.dumps({"items": items, "next_cursor": cursor})


def render_360(
    record: CustomerRecord, rows: Sequence[TimelineRow], limit: int, visible: bool
) -> bytes:
    """The stored document with contact, identities and the first timeline page spliced in."""
    contact = {
        "phone": _shown("phone", record.phone, visible),
        "email": _shown("email", record.email, visible),
        "masked": not visible,
    }
    identities = (
        orjson.Fragment(record.identities) if visible else _masked_identities(record.identities)
    )
    extra = orjson.dumps(
        {
            "contact": contact,
            "identities": identities,
            "timeline": orjson.Fragment(render_timeline(rows, limit, visible)),
        }
    )
    return record.document[:-1] + b"," + extra[1:]


def _shown(kind: str, value: str | None, visible: bool) -> str | None:
    if value is None or visible:
        return value
    return mask_contact(kind, value)


def _masked_identities(identities: bytes) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = orjson.loads(identities)
    for item in items:
        if item["type"] in CONTACT_KEYS and isinstance(item["value"], str):
            item["value"] = mask_contact(item["type"], item["value"])
    return items


def _timeline_body(row: TimelineRow, visible: bool) -> bytes:
    if visible or not row.contact:
        return row.body
    item = orjson.loads(row.body)
    properties = item.get("properties") or {}
    for key in CONTACT_KEYS:
        if key in properties:
            value = properties[key]
            properties[key] = mask_contact(key, value) if isinstance(value, str) else "***"
    return orjson.dumps(item)
