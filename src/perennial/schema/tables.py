"""The canonical tables every source is mapped into.

One registry serves four readers: ingest (which columns to build and check),
the store (Arrow schemas and partitioning), the documentation
(``docs/data-model.md`` is generated from it, so the two cannot drift) and
later layers (features, segments) that need to know what a column means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

__all__ = [
    "AMOUNT_TYPE",
    "LINEAGE_COLUMNS",
    "TABLES",
    "Column",
    "Kind",
    "OrderStatus",
    "Table",
    "table",
]

AMOUNT_TYPE = pa.decimal128(18, 4)
"""Money: exact decimals, four places (enough for every ISO 4217 minor unit)."""

_TS = pa.timestamp("us", tz="UTC")


class Kind(StrEnum):
    """How ingest converts a source value into the column's type."""

    STRING = "string"
    TIMESTAMP = "timestamp"
    DATE = "date"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    JSON = "json"
    CURRENCY = "currency"
    PHONE = "phone"
    EMAIL = "email"
    TIMEZONE = "timezone"
    ENUM = "enum"


class OrderStatus(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, type, whether a row may omit it, and meaning."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    non_negative: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]


_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.TIMESTAMP: _TS,
    Kind.DATE: pa.date32(),
    Kind.DECIMAL: AMOUNT_TYPE,
    Kind.INTEGER: pa.int64(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.JSON: pa.string(),
    Kind.CURRENCY: pa.string(),
    Kind.PHONE: pa.string(),
    Kind.EMAIL: pa.string(),
    Kind.TIMEZONE: pa.string(),
    Kind.ENUM: pa.string(),
}


@dataclass(frozen=True)
class Table:
    """A canonical table.

    ``key`` is the column that identifies a row across batches (re-sending a row
    with the same key is a duplicate, never a second row). ``time_column`` is the
    event time that partitions the table by UTC month, or ``None`` for small
    dimension tables stored unpartitioned.
    """

    name: str
    description: str
    key: str
    columns: tuple[Column, ...]
    time_column: str | None

    def column(self, name: str) -> Column:
        for candidate in self.columns:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def arrow_schema(self, *, with_lineage: bool = True) -> pa.Schema:
        fields = [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns]
        if with_lineage:
            fields += [pa.field(c.name, c.arrow_type, nullable=False) for c in LINEAGE_COLUMNS]
        return pa.schema(fields)


LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column("_batch_id", Kind.STRING, "Ingest batch that wrote the row (see `perennial batches`)."),
    Column("_source_file", Kind.STRING, "Path of the file (or API request) the row came from."),
    Column("_source_line", Kind.INTEGER, "Line (CSV, JSON Lines) or row (Parquet) in that source."),
    Column("_ingested_at", Kind.TIMESTAMP, "When the batch ran (its clock at the start), UTC."),
)

_CONSENT = "Consent to be contacted on {0}: true, false, or empty when unknown (treated as no)."

CUSTOMERS = Table(
    name="customers",
    description="One row per known customer: who they are and how to reach them.",
    key="customer_id",
    time_column=None,
    columns=(
        Column("customer_id", Kind.STRING, "The business's own customer id.", required=True),
        Column("created_at", Kind.TIMESTAMP, "When the customer registered or was first seen."),
        Column("name", Kind.STRING, "Display name."),
        Column("phone", Kind.PHONE, "Mobile phone, normalised to E.164 (+8613812345678)."),
        Column("email", Kind.EMAIL, "E-mail address, trimmed and lower-cased."),
        Column("birthday", Kind.DATE, "Date of birth (the year may be a placeholder)."),
        Column("gender", Kind.STRING, "As the source states it."),
        Column("region", Kind.STRING, "Province, state or city, as the source states it."),
        Column("acquisition_channel", Kind.STRING, "Channel that brought the customer in."),
        Column("timezone", Kind.TIMEZONE, "IANA time zone used for quiet hours and birthdays."),
        Column("wechat_openid", Kind.STRING, "WeChat official-account openid."),
        Column("wechat_unionid", Kind.STRING, "WeChat unionid (shared across the company's apps)."),
        Column("consent_email", Kind.BOOLEAN, _CONSENT.format("e-mail")),
        Column("consent_sms", Kind.BOOLEAN, _CONSENT.format("SMS")),
        Column("consent_push", Kind.BOOLEAN, _CONSENT.format("app push")),
        Column("consent_wechat", Kind.BOOLEAN, _CONSENT.format("WeChat")),
        Column("attributes", Kind.JSON, "Any further source columns, as a JSON object."),
    ),
)

ORDERS = Table(
    name="orders",
    description="One row per order (the order header); refunds are a status, not a negative row.",
    key="order_id",
    time_column="placed_at",
    columns=(
        Column(
            "order_id",
            Kind.STRING,
            "The business's order id, or one derived from the row's "
            "content when the source has none.",
            required=True,
        ),
        Column("customer_id", Kind.STRING, "Who placed the order.", required=True),
        Column("placed_at", Kind.TIMESTAMP, "When the order was placed, UTC.", required=True),
        Column(
            "amount",
            Kind.DECIMAL,
            "Amount paid, in `currency`, after discounts.",
            required=True,
            non_negative=True,
        ),
        Column("currency", Kind.CURRENCY, "ISO 4217 code (CNY, USD, ...).", required=True),
        Column(
            "status",
            Kind.ENUM,
            "paid, refunded or cancelled.",
            required=True,
            choices=tuple(OrderStatus),
        ),
        Column(
            "item_count",
            Kind.INTEGER,
            "Number of units in the order, when known.",
            non_negative=True,
        ),
        Column("coupon_code", Kind.STRING, "Coupon redeemed on the order, if any."),
        Column("channel", Kind.STRING, "Sales channel (app, web, store, mini-program, ...)."),
    ),
)

ORDER_ITEMS = Table(
    name="order_items",
    description="One row per line of an order.",
    key="item_id",
    time_column="placed_at",
    columns=(
        Column(
            "item_id",
            Kind.STRING,
            "Line id; derived from the line's content when the source has none.",
            required=True,
        ),
        Column("order_id", Kind.STRING, "The order this line belongs to.", required=True),
        Column(
            "placed_at",
            Kind.TIMESTAMP,
            "The order's time, repeated so lines partition with their order.",
            required=True,
        ),
        Column("product_id", Kind.STRING, "Product or SKU.", required=True),
        Column("category", Kind.STRING, "Product category (for category purchase cycles)."),
        Column("quantity", Kind.INTEGER, "Units bought.", required=True, non_negative=True),
        Column(
            "unit_price",
            Kind.DECIMAL,
            "Price of one unit, in the order's currency.",
            non_negative=True,
        ),
    ),
)

EVENTS = Table(
    name="events",
    description="Behaviour: anything a customer (or an anonymous visitor) did, at a time.",
    key="event_id",
    time_column="ts",
    columns=(
        Column(
            "event_id",
            Kind.STRING,
            "Event id; derived from the content when the source has none.",
            required=True,
        ),
        Column("customer_id", Kind.STRING, "Known customer, if the source knows them."),
        Column("anonymous_id", Kind.STRING, "Device or cookie id for visitors not yet known."),
        Column(
            "event_type",
            Kind.STRING,
            "Open vocabulary: login, page_view, add_to_cart, "
            "search, coupon_redeemed, complaint, refund_request, survey_answer, "
            "course_purchased, lesson_completed, course_completed, exam_passed, identify, ...",
            required=True,
        ),
        Column("ts", Kind.TIMESTAMP, "When it happened, UTC.", required=True),
        Column("properties", Kind.JSON, "Event details as a JSON object."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, ORDERS, ORDER_ITEMS, EVENTS)}


def table(name: str) -> Table:
    """The canonical table called ``name``; raises ``KeyError`` listing the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None
