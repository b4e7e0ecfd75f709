"""A batch's identity evidence, extracted into DuckDB tables rather than Python objects.

Evidence is what links two identifiers (a customer row and its phone, an event
carrying both a device and a customer, an ``identify`` event and the e-mail it
names) plus the lone sightings that only date an identifier (a customer with no
contact, a device's page views). Both are views on the batch's connection, over
the Parquet files the batch wrote, so no copy of a file's evidence is held
anywhere (the old graph kept it all as Python objects: 5 GB per million customers):

* ``identity_links``: one row per link, numbered ``ord`` in the order links are
  applied (time, then line, then the identifier's place in the row);
* ``identity_sightings``: identifiers seen alone, with when.

Only the JSON of ``identify`` events is read in Python, one Arrow batch at a
time, into a table of their traits; phones and e-mails found there are
normalised by the vectorised functions of :mod:`perennial.ingest.identifiers`,
which agree with the scalar ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from perennial.ingest.identifiers import normalize_emails, normalize_phones

__all__ = ["LINKS", "SIGHTINGS", "TRAITS", "extract_evidence", "link_reason"]

LINKS = "identity_links"
SIGHTINGS = "identity_sightings"
TRAITS = "identity_traits"
_NEW_TRAITS = "identity_new_traits"

_CUSTOMER_IDENTIFIERS = ("phone", "email", "wechat_openid", "wechat_unionid")
"""A customer row's identifiers, in the order its links apply."""

_TRAIT_COLUMNS = ("email", "phone", "wechat_openid", "wechat_unionid")
"""An identify event's single-valued traits, in the order its links apply (after the
event's own device-customer link); ``external_ids`` follow, sorted by system."""

_ROWS_PER_BATCH = 100_000
_LINE_SPAN = 2**40
_POSITION_SPAN = 2**20
"""``ord`` packs (time in µs, line, place in the row) into one HUGEINT that sorts like
the triple, so links are numbered in the order they apply without sorting them."""

_ORD = (
    f"((epoch_us(linked_at)::HUGEINT * {_LINE_SPAN} + source_line) * {_POSITION_SPAN} + position)"
)
_TRAITS_DDL = f"""
CREATE OR REPLACE TEMP TABLE {TRAITS} (
    a_type VARCHAR, a_value VARCHAR, b_type VARCHAR, b_value VARCHAR,
    linked_at TIMESTAMPTZ, source_line BIGINT, position INTEGER)
"""
_LINK_COLUMNS = "a_type, a_value, b_type, b_value, linked_at, source_line"


def extract_evidence(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batch_files: Sequence[str],
    batch_id: str,
    clock: datetime,
    phone_region: str,
) -> bool:
    """Define ``identity_links`` and ``identity_sightings`` over the view ``batch_rows``.

    ``batch_rows`` holds the rows this batch added to ``table`` (``customers`` or
    ``events``), which lie in ``batch_files`` stamped with ``batch_id``. A customer
    without ``created_at`` is seen at ``clock``. Returns whether there is any evidence.
    Both are views over the batch's Parquet files, not copies (only the traits of
    identify events are computed and stored), and links keep no reason text (see
    :func:`link_reason`): millions of links take no memory until a query reads them.
    """
    if table == "customers":
        _customer_evidence(con, clock)
    else:
        _event_evidence(con, batch_files, batch_id, phone_region)
    found = con.execute(f"SELECT EXISTS (FROM {LINKS}) OR EXISTS (FROM {SIGHTINGS})").fetchone()
    return bool(found and found[0])


def link_reason(table: str, link: str) -> str:
    """SQL for the evidence of ``link`` (an alias of ``identity_links``) in words:
    ``customer record phone``, ``login event``, ``identify event email``."""
    prefix = "customer record " if table == "customers" else "identify event "
    return f"coalesce({link}.event_type || ' event', '{prefix}' || {link}.b_type)"


def _customer_evidence(con: duckdb.DuckDBPyConnection, clock: datetime) -> None:
    """A customer row links its customer id to each of its identifiers, at ``created_at``."""
    seen_at = f"coalesce(created_at, TIMESTAMPTZ '{clock.isoformat()}')"  # our clock, not input
    contacts = " UNION ALL ".join(
        f"""
        SELECT 'customer_id' AS a_type, customer_id AS a_value, '{kind}' AS b_type,
               {kind} AS b_value, {seen_at} AS linked_at, _source_line AS source_line,
               {position} AS position
        FROM batch_rows WHERE {kind} IS NOT NULL
        """  # noqa: S608 (fixed column names)
        for position, kind in enumerate(_CUSTOMER_IDENTIFIERS)
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {SIGHTINGS} AS
        SELECT 'customer_id' AS identity_type, customer_id AS identity_value, {seen_at} AS seen_at
        FROM batch_rows;
        CREATE OR REPLACE TEMP VIEW {LINKS} AS
        SELECT {_ORD} AS ord, {_LINK_COLUMNS}, NULL::VARCHAR AS event_type FROM ({contacts});
        """  # noqa: S608 (fixed table names)
    )


def _event_evidence(
    con: duckdb.DuckDBPyConnection, batch_files: Sequence[str], batch_id: str, phone_region: str
) -> None:
    """Devices are sighted at their first event; an event with a device and a customer links
    them; an identify event links its device (else its customer) to the traits it names."""
    con.execute(_TRAITS_DDL)
    for batch in _identify_events(batch_files, batch_id):
        if batch.num_rows == 0:
            continue
        traits = _trait_links(pl.DataFrame(pa.Table.from_batches([batch])), phone_region)
        if traits.height:
            con.register(_NEW_TRAITS, traits.to_arrow())
            con.execute(f"INSERT INTO {TRAITS} SELECT * FROM {_NEW_TRAITS}")  # noqa: S608
            con.unregister(_NEW_TRAITS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {SIGHTINGS} AS
        SELECT 'anonymous_id' AS identity_type, anonymous_id AS identity_value, min(ts) AS seen_at
        FROM batch_rows WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id;
        CREATE OR REPLACE TEMP VIEW {LINKS} AS
        SELECT {_ORD} AS ord, {_LINK_COLUMNS}, event_type FROM (
            SELECT 'anonymous_id' AS a_type, anonymous_id AS a_value, 'customer_id' AS b_type,
                   customer_id AS b_value, ts AS linked_at, _source_line AS source_line,
                   0 AS position, event_type
            FROM batch_rows WHERE anonymous_id IS NOT NULL AND customer_id IS NOT NULL)
        UNION ALL
        SELECT {_ORD}, {_LINK_COLUMNS}, NULL FROM {TRAITS};
        """  # noqa: S608 (fixed table names)
    )


def _identify_events(batch_files: Sequence[str], batch_id: str) -> Iterator[pa.RecordBatch]:
    """The batch's identify events that carry properties and a subject, in bounded batches."""
    dataset = ds.dataset(list(batch_files), format="parquet")
    wanted = (
        (ds.field("_batch_id") == batch_id)
        & (ds.field("event_type") == "identify")
        & ds.field("properties").is_valid()
        & (ds.field("anonymous_id").is_valid() | ds.field("customer_id").is_valid())
    )
    columns = ["anonymous_id", "customer_id", "ts", "properties", "_source_line"]
    yield from dataset.to_batches(columns=columns, filter=wanted, batch_size=_ROWS_PER_BATCH)


def _trait_links(events: pl.DataFrame, phone_region: str) -> pl.DataFrame:
    """One row per trait an identify event names: subject, trait, time, line, place."""
    raw = _raw_trait_columns(events.get_column("properties"))
    wide = events.select(
        event=pl.int_range(pl.len()),
        a_type=pl.when(pl.col("anonymous_id").is_not_null())
        .then(pl.lit("anonymous_id"))
        .otherwise(pl.lit("customer_id")),
        a_value=pl.coalesce("anonymous_id", "customer_id"),
        linked_at=pl.col("ts"),
        source_line=pl.col("_source_line"),
    ).with_columns(
        email=normalize_emails(raw.get_column("email")),
        phone=normalize_phones(raw.get_column("phone"), phone_region),
        wechat_openid=raw.get_column("wechat_openid"),
        wechat_unionid=raw.get_column("wechat_unionid"),
        external_id=raw.get_column("external_id"),
    )
    index = ["event", "a_type", "a_value", "linked_at", "source_line"]
    places = {kind: place for place, kind in enumerate(_TRAIT_COLUMNS, start=1)}
    singles = (
        wide.unpivot(_TRAIT_COLUMNS, index=index, variable_name="b_type", value_name="b_value")
        .drop_nulls("b_value")
        .with_columns(position=pl.col("b_type").replace_strict(places, return_dtype=pl.Int32))
    )
    externals = (
        wide.select(*index, b_value="external_id")
        .explode("b_value")
        .drop_nulls("b_value")
        .with_columns(
            b_type=pl.lit("external_id"),
            position=(pl.int_range(pl.len()).over("event") + len(places) + 1).cast(pl.Int32),
        )
    )
    columns = ["a_type", "a_value", "b_type", "b_value", "linked_at", "source_line", "position"]
    return pl.concat([singles.select(columns), externals.select(columns)])


def _raw_trait_columns(properties: pl.Series) -> pl.DataFrame:
    """:func:`_raw_traits` of each event, as columns (built by pyarrow: polars is slow to
    build a list column from Python lists)."""
    parsed = [_raw_traits(text) for text in properties.to_list()]
    values = list(zip(*parsed, strict=True)) if parsed else [()] * (len(_TRAIT_COLUMNS) + 1)
    types = [pa.string()] * len(_TRAIT_COLUMNS) + [pa.list_(pa.string())]
    raw = pl.DataFrame(
        pa.table(
            [pa.array(column, type) for column, type in zip(values, types, strict=True)],
            names=[*_TRAIT_COLUMNS, "external_id"],
        )
    )
    longest = raw.get_column("external_id").list.len().max()
    most = _POSITION_SPAN - len(_TRAIT_COLUMNS) - 1
    if isinstance(longest, int) and longest > most:
        raise ValueError(f"an identify event names {longest:,} external ids; at most {most:,}")
    return raw


def _raw_traits(
    properties: str,
) -> tuple[str | None, str | None, str | None, str | None, list[str]]:
    """An identify event's traits before normalisation: e-mail and phone as text (``str`` of
    the JSON value, when truthy), WeChat ids trimmed, ``external_ids`` as ``system:id``
    sorted by system (``{"crm": "C-1"}`` -> ``crm:C-1``)."""
    values: dict[str, Any] = orjson.loads(properties)
    email = str(values["email"]) if values.get("email") else None
    phone = str(values["phone"]) if values.get("phone") else None
    wechat = [
        value.strip() if isinstance(value, str) and value.strip() else None
        for value in (values.get("wechat_openid"), values.get("wechat_unionid"))
    ]
    external = values.get("external_ids")
    externals = (
        [
            f"{system}:{str(value).strip()}"
            for system, value in sorted(external.items())
            if isinstance(value, str | int) and str(value).strip() and system
        ]
        if isinstance(external, dict)
        else []
    )
    return email, phone, wechat[0], wechat[1], externals
