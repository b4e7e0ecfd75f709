"""The JSON the API serves, rendered once per refresh by DuckDB instead of once per request.

Rendering a customer's 360 (about 70 profile fields, labels, stage history) in
Python costs tens of microseconds per customer per request; DuckDB renders a
million of them in seconds at refresh, and a request then only splices stored
bytes. These queries read the temporary views :mod:`perennial.serving.refresh`
creates (``srv_*``) and the macros of :data:`MACROS`. Phone and e-mail never
enter a stored document: they are columns (and flagged timeline items) that the
API masks per caller. Instants are ISO 8601 UTC (``2025-01-02T03:04:05Z``), days
``YYYY-MM-DD``, money decimal text (``"123.5"``), never a float.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "CONTACT_KEYS",
    "DOCUMENT_COLUMN",
    "MACROS",
    "RESERVED_PROFILE_COLUMNS",
    "DocumentCodec",
    "DocumentCompressor",
    "customers_query",
    "feature_expressions",
    "timeline_query",
]

CONTACT_KEYS = ("phone", "email")
"""Top-level keys of event properties holding contact details (``identify`` events):
items with them are flagged, and the API masks these keys like the customer's own."""

RESERVED_PROFILE_COLUMNS = frozenset(
    {
        "customer_id",
        "as_of",
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "rfm_fm",
        "rfm_code",
        "rfm_segment",
        "value_tier",
        "stage",
        "stage_rank",
    }
)
"""Profile columns shown in their own sections of the 360, not among the features."""

MACROS: tuple[str, ...] = (
    "CREATE OR REPLACE TEMP MACRO srv_iso(ts) AS CASE WHEN ts IS NULL THEN NULL "
    "WHEN microsecond(ts) % 1000000 = 0 THEN strftime(ts, '%Y-%m-%dT%H:%M:%SZ') "
    "ELSE strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') END",
    "CREATE OR REPLACE TEMP MACRO srv_day(d) AS strftime(d, '%Y-%m-%d')",
    "CREATE OR REPLACE TEMP MACRO srv_epoch_day(d) AS CAST(d - DATE '1970-01-01' AS INTEGER)",
    "CREATE OR REPLACE TEMP MACRO srv_local_day(ts, zone) AS "
    "CAST(CAST(timezone(zone, ts) AS DATE) - DATE '1970-01-01' AS INTEGER)",
    "CREATE OR REPLACE TEMP MACRO srv_money(x) AS CASE WHEN x IS NULL THEN NULL ELSE "
    r"regexp_replace(regexp_replace(CAST(x AS VARCHAR), '(\.[0-9]*?)0+$', '\1'), '\.$', '') END",
    "CREATE OR REPLACE TEMP MACRO srv_object(t) AS CASE WHEN t IS NULL THEN NULL "
    "WHEN json_valid(t) AND json_type(t) = 'OBJECT' THEN json(t) "
    "ELSE json_object('value', t) END",
    "CREATE OR REPLACE TEMP MACRO srv_has_contact(t) AS CASE "
    "WHEN json_valid(t) AND json_type(t) = 'OBJECT' THEN coalesce("
    + " OR ".join(f"json_exists(t, '$.{key}')" for key in CONTACT_KEYS)
    + ", false) ELSE false END",
)
"""DuckDB macros the refresh's queries use: ISO instants, days (as text and as days since
1970-01-01), money text, JSON objects."""


DOCUMENT_COLUMN = 17
"""Position of the 360 document among the columns of :func:`customers_query`."""


@dataclass(frozen=True)
class DocumentCodec:
    """How 360 documents are stored: zlib with a preset dictionary (a real document).

    The feature names repeat in every document, so one compressed against a
    dictionary holding them shrinks about 7 times (2.4 kB to 0.35 kB on the demo
    data) and a million of them fit the page cache; decompressing costs ~10 us.
    """

    dictionary: bytes

    def compress(self, document: str) -> bytes:
        packer = zlib.compressobj(6, zdict=self.dictionary)
        return packer.compress(document.encode()) + packer.flush()

    def decompress(self, stored: bytes) -> bytes:
        unpacker = zlib.decompressobj(zdict=self.dictionary)
        return unpacker.decompress(stored) + unpacker.flush()


class DocumentCompressor:
    """Compresses documents for the refresh, taking the first one as the dictionary."""

    def __init__(self) -> None:
        self.codec: DocumentCodec | None = None

    def __call__(self, document: str) -> bytes:
        if self.codec is None:
            self.codec = DocumentCodec(document.encode())
        return self.codec.compress(document)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _feature_value(column: str, kind: pa.DataType) -> str:
    """A profile column as a JSON value: instants and days as text, non-finite floats null."""
    ref = f"p.{_quote(column)}"
    if pa.types.is_timestamp(kind):
        return f"srv_iso({ref})"
    if pa.types.is_date(kind):
        return f"srv_day({ref})"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        number = f"CAST({ref} AS DOUBLE)"
        return f"CASE WHEN isfinite({number}) THEN {number} END"
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_string(kind):
        return ref
    return f"CAST({ref} AS VARCHAR)"


def feature_expressions(profiles: pa.Schema) -> str:
    """``'name', value, ...`` for every profile column that is a feature, in table order."""
    pairs = [
        f"{_literal(field.name)}, {_feature_value(field.name, field.type)}"
        for field in profiles
        if field.name not in RESERVED_PROFILE_COLUMNS
    ]
    return ", ".join(pairs)


def customers_query(profiles: pa.Schema) -> str:
    """One row per profile: the columns of the ``customers`` table, in customer-id order.

    Parameters: ``$model`` (the stage model's name).
    """
    document = f"""json_object(
        'customer_id', p.customer_id,
        'name', c.name,
        'as_of', srv_iso(p.as_of),
        'model', $model,
        'stage', json_object('key', p.stage, 'label_en', sl.label_en, 'label_zh', sl.label_zh,
            'kpi', sl.kpi,
            'since', CASE WHEN h.last_to IS NOT DISTINCT FROM p.stage THEN srv_day(h.last_day) END),
        'rfm', json_object('r', p.rfm_r, 'f', p.rfm_f, 'm', p.rfm_m, 'fm', p.rfm_fm,
            'code', p.rfm_code, 'segment', p.rfm_segment,
            'segment_label_en', gl.label_en, 'segment_label_zh', gl.label_zh),
        'value_tier', json_object('key', p.value_tier, 'label_en', tl.label_en,
            'label_zh', tl.label_zh),
        'features', json_object({feature_expressions(profiles)}),
        'details', json_object('created_at', srv_iso(c.created_at),
            'birthday', srv_day(c.birthday), 'gender', c.gender, 'region', c.region,
            'acquisition_channel', c.acquisition_channel, 'timezone', c.timezone,
            'consent', json_object('email', c.consent_email, 'sms', c.consent_sms,
                'push', c.consent_push, 'wechat', c.consent_wechat)),
        'attributes', coalesce(srv_object(c.attributes), '{{}}'::JSON),
        'stage_history', coalesce(h.items, '[]'::JSON),
        'predictions', CASE WHEN pr.customer_id IS NULL THEN NULL ELSE json_object(
            'as_of', srv_iso(pr.as_of),
            'p_alive', pr.p_alive,
            'expected_purchases_90d', pr.expected_purchases_90d,
            'expected_purchases_12m', pr.expected_purchases_12m,
            'expected_average_spend', pr.expected_average_spend,
            'clv_12m', pr.clv_12m,
            'churn', CASE WHEN pr.churn_probability IS NULL THEN NULL ELSE json_object(
                'probability', pr.churn_probability, 'risk_band', pr.churn_risk_band,
                'percentile', pr.churn_percentile,
                'reasons_en', coalesce(pr.churn_reasons_en, []),
                'reasons_zh', coalesce(pr.churn_reasons_zh, []),
                'model_version', pr.churn_model_version) END,
            'next_order', CASE WHEN pr.next_order_expected_at IS NULL THEN NULL ELSE json_object(
                'expected_on', srv_day(pr.next_order_expected_at),
                'earliest', srv_day(pr.next_order_earliest),
                'latest', srv_day(pr.next_order_latest),
                'probability_30d', pr.next_order_probability_30d) END,
            'replenishment', CASE WHEN pr.replenishment_opens_on IS NULL THEN NULL ELSE
                json_object('category', pr.replenishment_category,
                    'opens_on', srv_day(pr.replenishment_opens_on)) END
        ) END
    )"""
    return f"""
    WITH c AS (
        SELECT * FROM srv_customers
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY _ingested_at DESC) = 1
    ),
    h AS (
        SELECT customer_id,
               to_json(list(json_object('day', srv_day(day), 'from_stage', from_stage,
                   'to_stage', to_stage) ORDER BY day DESC)) AS items,
               arg_max(to_stage, day) AS last_to,
               max(day) AS last_day
        FROM srv_transitions GROUP BY customer_id
    ),
    ids AS (
        SELECT customer_id,
               to_json(list(json_object('type', identity_type, 'value', identity_value,
                   'first_seen_at', srv_iso(first_seen_at))
                   ORDER BY identity_type, identity_value)) AS items
        FROM srv_identities
        WHERE customer_id IS NOT NULL AND identity_type <> 'customer_id'
        GROUP BY customer_id
    )
    SELECT p.customer_id,
           c.name,
           lower(nfc_normalize(c.name)) AS name_key,
           c.phone,
           c.email,
           p.stage,
           p.rfm_segment,
           p.value_tier,
           coalesce(CASE WHEN isfinite(p.monetary_total) THEN p.monetary_total END, 0.0)
               AS monetary,
           epoch_us(p.last_order_at) AS last_order_at,
           coalesce(epoch_us(p.last_order_at), -1) AS last_order_key,
           CAST(coalesce(ids.items, '[]'::JSON) AS VARCHAR) AS identities,
           pr.churn_probability,
           pr.churn_risk_band,
           pr.clv_12m AS clv,
           CASE WHEN pr.churn_probability IS NULL THEN NULL
                ELSE to_json(pr.churn_reasons_en)::VARCHAR END AS churn_reasons_en,
           CASE WHEN pr.churn_probability IS NULL THEN NULL
                ELSE to_json(pr.churn_reasons_zh)::VARCHAR END AS churn_reasons_zh,
           CAST({document} AS VARCHAR) AS document
    FROM srv_profiles AS p
    LEFT JOIN c USING (customer_id)
    LEFT JOIN srv_predictions AS pr USING (customer_id)
    LEFT JOIN h USING (customer_id)
    LEFT JOIN ids USING (customer_id)
    LEFT JOIN srv_stage_labels AS sl ON sl.key = p.stage
    LEFT JOIN srv_segment_labels AS gl ON gl.key = p.rfm_segment
    LEFT JOIN srv_tier_labels AS tl ON tl.key = p.value_tier
    ORDER BY p.customer_id
    """  # noqa: S608 (column names from the profiles' schema, quoted; no user input)


def timeline_query() -> str:
    """Orders (with their lines) and events of the profiles' customers, in key order.

    An event without a customer id belongs to the customer its anonymous id is
    linked to in today's identity graph (the 360 shows what is known now).
    """
    return """
    WITH known AS (SELECT customer_id FROM srv_profiles),
    lines AS (
        SELECT order_id,
               to_json(list(json_object('product_id', product_id, 'category', category,
                   'quantity', quantity, 'unit_price', srv_money(unit_price))
                   ORDER BY item_id)) AS items
        FROM srv_order_items GROUP BY order_id
    ),
    linked AS (
        SELECT identity_value AS anonymous_id, any_value(customer_id) AS customer_id
        FROM srv_identities
        WHERE identity_type = 'anonymous_id' AND customer_id IS NOT NULL
        GROUP BY identity_value
    ),
    order_items AS (
        SELECT o.customer_id, epoch_us(o.placed_at) AS at_us, 'o:' || o.order_id AS item_key,
               false AS contact,
               json_object('kind', 'order', 'id', o.order_id, 'at', srv_iso(o.placed_at),
                   'status', o.status, 'amount', srv_money(o.amount), 'currency', o.currency,
                   'item_count', o.item_count, 'channel', o.channel,
                   'coupon_code', o.coupon_code, 'lines', coalesce(l.items, '[]'::JSON)) AS body
        FROM srv_orders AS o LEFT JOIN lines AS l USING (order_id)
        WHERE o.customer_id IN (SELECT customer_id FROM known)
    ),
    event_items AS (
        SELECT coalesce(e.customer_id, a.customer_id) AS customer_id, epoch_us(e.ts) AS at_us,
               'e:' || e.event_id AS item_key,
               srv_has_contact(e.properties) AS contact,
               json_object('kind', 'event', 'id', e.event_id, 'at', srv_iso(e.ts),
                   'type', e.event_type, 'anonymous_id', e.anonymous_id,
                   'properties', srv_object(e.properties)) AS body
        FROM srv_events AS e
        LEFT JOIN linked AS a ON e.customer_id IS NULL AND a.anonymous_id = e.anonymous_id
        WHERE coalesce(e.customer_id, a.customer_id) IN (SELECT customer_id FROM known)
    )
    SELECT customer_id, at_us, item_key, CAST(contact AS INTEGER) AS contact,
           CAST(body AS VARCHAR) AS body
    FROM (SELECT * FROM order_items UNION ALL SELECT * FROM event_items)
    ORDER BY customer_id, at_us, item_key
    """
