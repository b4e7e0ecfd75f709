"""Generate ``docs/data-model.md`` from the schema registry.

The canonical tables come from :mod:`perennial.schema.tables`. The system tables
(identities, quarantine, the batch log) have their Arrow schemas in ``ingest``,
which this layer may not import; they are described here by hand, and a test
checks these descriptions against the real schemas column by column.

Regenerate the document with::

    python -m perennial.schema.docs > docs/data-model.md
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pyarrow as pa

from perennial.config import Settings
from perennial.schema.tables import LINEAGE_COLUMNS, TABLES, Column, Kind, Table

__all__ = [
    "EVENT_TYPES",
    "SYSTEM_TABLES",
    "SystemColumn",
    "SystemTable",
    "arrow_type_name",
    "column_type",
    "main",
    "render_data_model",
]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class SystemColumn:
    """One column of a system table, as documented."""

    name: str
    arrow_type: pa.DataType
    meaning: str


@dataclass(frozen=True)
class SystemTable:
    """A table that ingest writes for its own bookkeeping (not mapped from sources)."""

    name: str
    description: str
    columns: tuple[SystemColumn, ...]


SYSTEM_TABLES: tuple[SystemTable, ...] = (
    SystemTable(
        "identities",
        "One row per identifier ever seen: which cluster (person) it belongs to. Rewritten "
        "with the changed rows whenever a batch changes memberships.",
        (
            SystemColumn(
                "identity_type",
                pa.string(),
                "customer_id, anonymous_id, phone, email, wechat_openid, wechat_unionid or "
                "external_id (`system:id`, named by identify events).",
            ),
            SystemColumn(
                "identity_value",
                pa.string(),
                "The identifier, normalised as in the canonical tables (phones E.164, "
                "e-mails lower-cased).",
            ),
            SystemColumn(
                "cluster_id",
                pa.string(),
                "The cluster: `customer_id:<id>` when it holds a known customer, else its "
                "smallest `type:value` key. Depends only on the members.",
            ),
            SystemColumn(
                "customer_id", pa.string(), "The cluster's known customer; empty if anonymous."
            ),
            SystemColumn(
                "first_seen_at",
                _TS,
                "Earliest time the identifier was seen (the customer's `created_at`, an "
                "event's `ts`, or the batch time when the row has none).",
            ),
        ),
    ),
    SystemTable(
        "identity_merges",
        "One row per link that joined two clusters: why a device or phone belongs to a customer.",
        (
            SystemColumn("merged_at", _TS, "Time of the evidence (record or event time)."),
            SystemColumn("node_a", pa.string(), "One identifier of the link, as `type:value`."),
            SystemColumn("node_b", pa.string(), "The other identifier, as `type:value`."),
            SystemColumn("from_cluster", pa.string(), "The cluster that ceased to exist."),
            SystemColumn("into_cluster", pa.string(), "The joined cluster's id."),
            SystemColumn("customer_id", pa.string(), "The joined cluster's customer, if any."),
            SystemColumn(
                "reason",
                pa.string(),
                "The evidence, e.g. `customer record phone`, `identify event`, `login event`.",
            ),
            SystemColumn("source_file", pa.string(), "File the evidence came from."),
            SystemColumn("source_line", pa.int64(), "Line (or row) in that file."),
            SystemColumn("batch_id", pa.string(), "Ingest batch that applied the link."),
        ),
    ),
    SystemTable(
        "identity_conflicts",
        "One row per refused link: it would have joined two different known customers.",
        (
            SystemColumn("at", _TS, "Time of the evidence."),
            SystemColumn("node_a", pa.string(), "One identifier of the link, as `type:value`."),
            SystemColumn("node_b", pa.string(), "The other identifier, as `type:value`."),
            SystemColumn("customer_a", pa.string(), "Customer of `node_a`'s cluster."),
            SystemColumn("customer_b", pa.string(), "Customer of `node_b`'s cluster."),
            SystemColumn("reason", pa.string(), "The evidence, as in `identity_merges`."),
            SystemColumn("source_file", pa.string(), "File the evidence came from."),
            SystemColumn("source_line", pa.int64(), "Line (or row) in that file."),
            SystemColumn("batch_id", pa.string(), "Ingest batch that saw the link."),
        ),
    ),
    SystemTable(
        "quarantine",
        "One row per source row that was read but not accepted (see `perennial quarantine`).",
        (
            SystemColumn("batch_id", pa.string(), "Ingest batch that read the row."),
            SystemColumn("table_name", pa.string(), "Canonical table the row was meant for."),
            SystemColumn("source_file", pa.string(), "Path of the source file."),
            SystemColumn(
                "source_line", pa.int64(), "Line (CSV, text, JSON Lines) or row (Parquet)."
            ),
            SystemColumn(
                "column_name",
                pa.string(),
                "Column at fault; empty when the record could not be split into fields.",
            ),
            SystemColumn(
                "reason",
                pa.string(),
                "Why, with the offending value: `placed_at: unparsable timestamp '2024-13-01'`.",
            ),
            SystemColumn(
                "raw",
                pa.string(),
                "The row: source fields as a JSON object (canonical fields for key conflicts), "
                "or the raw text of a record that could not be split.",
            ),
            SystemColumn("quarantined_at", _TS, "The batch's time, UTC."),
        ),
    ),
    SystemTable(
        "ingest_batches",
        "The batch log: one row per ingest, committed in the same version as its data "
        "(see `perennial batches`).",
        (
            SystemColumn("batch_id", pa.string(), "Batch id: `<UTC start time>-<8 hex>`."),
            SystemColumn("table_name", pa.string(), "Canonical table the file was loaded into."),
            SystemColumn("source_file", pa.string(), "Path of the source file."),
            SystemColumn(
                "committed_at",
                _TS,
                "The batch's time (when the ingest started), UTC; the rows' `_ingested_at`.",
            ),
            SystemColumn("rows_read", pa.int64(), "Records read, including unsplittable ones."),
            SystemColumn("accepted", pa.int64(), "Rows written to the canonical table."),
            SystemColumn("quarantined", pa.int64(), "Rows written to `quarantine`."),
            SystemColumn(
                "duplicates_in_batch",
                pa.int64(),
                "Rows repeated in the file with the same key and values (kept once).",
            ),
            SystemColumn(
                "already_stored", pa.int64(), "Rows whose key was stored with the same values."
            ),
            SystemColumn(
                "superseded_in_batch",
                pa.int64(),
                "Earlier versions of a key in the same file, dropped under `latest_wins`.",
            ),
            SystemColumn(
                "replaced",
                pa.int64(),
                "Stored rows replaced by a new version (`on_duplicate: latest_wins`).",
            ),
            SystemColumn("identity_merges", pa.int64(), "Rows added to `identity_merges`."),
            SystemColumn("identity_conflicts", pa.int64(), "Rows added to `identity_conflicts`."),
            SystemColumn(
                "quarantine_reasons",
                pa.string(),
                "JSON object: reason (without the offending value) -> number of rows.",
            ),
        ),
    ),
)
"""The system tables, in the order the document lists them."""

EVENT_TYPES: tuple[tuple[str, str], ...] = (
    ("login", "The customer signed in."),
    ("page_view", "A page or screen was viewed."),
    ("add_to_cart", "A product was put in the cart."),
    ("search", "A search on the site or in the app."),
    ("coupon_redeemed", "A coupon was used."),
    ("complaint", "A complaint was made (any channel)."),
    ("refund_request", "A refund was asked for (the order's status records the outcome)."),
    ("survey_answer", "A survey was answered."),
    ("course_purchased", "Education: a course was bought."),
    ("lesson_completed", "Education: a lesson was finished."),
    ("course_completed", "Education: the last lesson of a course was finished."),
    ("exam_passed", "Education: an exam was passed (a certificate)."),
    (
        "identify",
        "Ties the event's `anonymous_id` to its `customer_id`, and the event's `anonymous_id` "
        "(else its `customer_id`) to the `email`, `phone`, `wechat_openid`, `wechat_unionid` "
        "and `external_ids` (`{system: id}`) in `properties`, when present.",
    ),
)
"""The event types the product knows by name; the vocabulary stays open."""

_QUALIFIERS: dict[Kind, str] = {
    Kind.PHONE: "E.164",
    Kind.EMAIL: "lower-cased",
    Kind.CURRENCY: "ISO 4217",
    Kind.TIMEZONE: "IANA zone",
    Kind.JSON: "JSON object",
    Kind.ENUM: "enum",
}
_UNITS = {"s": "s", "ms": "ms", "us": "µs", "ns": "ns"}
_GENERATED = (
    "<!-- Generated from src/perennial/schema/tables.py and src/perennial/schema/docs.py. "
    "Do not edit: run `python -m perennial.schema.docs > docs/data-model.md`. -->"
)


def arrow_type_name(data_type: pa.DataType) -> str:
    """A readable name of an Arrow type: ``timestamp (UTC, µs)``, ``decimal(18,4)``, ..."""
    if pa.types.is_timestamp(data_type):
        zone = str(data_type.tz) if data_type.tz else "no zone"
        return f"timestamp ({zone}, {_UNITS[str(data_type.unit)]})"
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_date32(data_type):
        return "date"
    return str(data_type)


def column_type(column: Column) -> str:
    """The column's readable type: the Arrow type, qualified by what the kind guarantees."""
    base = arrow_type_name(column.arrow_type)
    qualifier = _QUALIFIERS.get(column.kind)
    return f"{base} ({qualifier})" if qualifier else base


def render_data_model() -> str:
    """The whole Markdown of ``docs/data-model.md``."""
    sections = [
        _introduction(),
        *(_canonical_table(t) for t in TABLES.values()),
        _lineage(),
        _system_tables(),
        _event_types(),
        _rules(),
    ]
    return "\n\n".join(s.strip("\n") for s in sections) + "\n"


def main() -> None:
    """Write the document to standard output (UTF-8)."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    sys.stdout.write(render_data_model())


# --- sections -------------------------------------------------------------------------


def _introduction() -> str:
    names = ", ".join(f"[`{name}`](#{name})" for name in TABLES)
    return f"""{_GENERATED}

# Data model

Every source file is mapped into one of the canonical tables:
{names}.
A mapping file (`examples/mappings/`) says which source column feeds which
canonical column; without one, columns are taken by their canonical names.
Ingest adds [lineage columns](#lineage-columns) to every row and keeps its own
bookkeeping in the [system tables](#system-tables). All tables live in the
analytical store as Parquet files (see `docs/architecture.md`).

Each table has a key. A row whose key is already stored with the same values
is a re-send and is skipped; with other values it is quarantined, or it
replaces the stored row when the mapping says `on_duplicate: latest_wins`.
A required column that is empty, or any value that does not convert, sends the
row to the quarantine with the column and the reason.

## Canonical tables"""


def _partitioning(table: Table) -> str:
    if table.time_column is None:
        return f"none: all files directly under `{table.name}/`."
    return f"by UTC month of `{table.time_column}`, in folders `{table.name}/month=YYYY-MM/`."


def _meaning(column: Column) -> str:
    parts = [column.description]
    if column.choices:
        parts.append("One of " + ", ".join(f"`{c}`" for c in column.choices) + ".")
    if column.non_negative:
        parts.append("Never negative.")
    return " ".join(parts)


_TABLE_RULES: dict[str, str] = {
    "events": "- A row needs a `customer_id`, an `anonymous_id`, or both.",
}
"""Rules over several columns that ingest checks, by table."""


def _canonical_table(table: Table) -> str:
    rows = [
        _row(f"`{c.name}`", column_type(c), "yes" if c.required else "no", _meaning(c))
        for c in table.columns
    ]
    return "\n".join(
        [
            f"### {table.name}",
            "",
            table.description,
            "",
            f"- Key: `{table.key}`.",
            f"- Partitioning: {_partitioning(table)}",
            *([_TABLE_RULES[table.name]] if table.name in _TABLE_RULES else []),
            "",
            _row("Column", "Type", "Required", "Meaning"),
            _row("---", "---", "---", "---"),
            *rows,
        ]
    )


def _lineage() -> str:
    rows = [_row(f"`{c.name}`", column_type(c), c.description) for c in LINEAGE_COLUMNS]
    return "\n".join(
        [
            "## Lineage columns",
            "",
            "Every canonical table also carries these columns. Ingest fills them (a source",
            "cannot), so every stored row can be traced to its batch, file and line.",
            "",
            _row("Column", "Type", "Meaning"),
            _row("---", "---", "---"),
            *rows,
        ]
    )


def _system_tables() -> str:
    parts = [
        "## System tables",
        "",
        "Written by ingest in the same commit as the data they describe, and never mapped",
        "from a source. None is partitioned.",
    ]
    for table in SYSTEM_TABLES:
        parts += ["", f"### {table.name}", "", table.description, ""]
        parts += [_row("Column", "Type", "Meaning"), _row("---", "---", "---")]
        parts += [
            _row(f"`{c.name}`", arrow_type_name(c.arrow_type), c.meaning) for c in table.columns
        ]
    return "\n".join(parts)


def _event_types() -> str:
    rows = [_row(f"`{name}`", meaning) for name, meaning in EVENT_TYPES]
    return "\n".join(
        [
            "## Event types",
            "",
            "`events.event_type` is an open vocabulary. The names below are the shared ones;",
            "`identify` is the one ingest itself acts on. Any other name the business has",
            "(`video_watched`, `store_visit`, ...) is stored as it is.",
            "",
            _row("Event type", "Meaning"),
            _row("---", "---"),
            *rows,
        ]
    )


def _setting(name: str) -> str:
    return str(Settings.model_fields[name].default)


def _rules() -> str:
    zone = _setting("default_timezone")
    tolerance = float(_setting("future_tolerance_hours"))
    region = _setting("default_phone_region")
    return f"""## Time

- Timestamps are stored in UTC, to the microsecond.
- A source timestamp with an offset (`+08:00`, `Z`) is read as that instant. A
  naive one is local time in the column's `timezone` in the mapping, else the
  mapping's `timezone`, else the setting `default_timezone` ({zone}). A local
  time that does not exist (a daylight-saving gap) is quarantined as
  unparsable; an ambiguous one takes the earlier instant.
- Timestamps more than {tolerance:g} h after the ingest's clock (setting
  `future_tolerance_hours`) or before 1900-01-01 are quarantined.
- `birthday` is a calendar date with no time zone.

## Money

- Amounts are exact decimals, `decimal(18,4)`, always with an ISO 4217
  currency code (upper-cased and checked against the ISO list). Commas are
  removed as thousands separators. `divide_by` in the mapping converts cents;
  that division is done in 64-bit floating point and rounded to four places.
- Amounts are never negative: a refund is the order's `status` (`refunded`),
  not a negative amount. A negative amount is quarantined.

## Ids

- Keys come from the source when the mapping provides them.
- When the source has no key column (or, with `missing_keys: derive` in the
  mapping, for the rows that leave it empty), the key is derived: `h` followed by 24 hex
  characters of the MD5 of the row's canonical values (every column except the
  key, after conversion) and its occurrence number among identical rows of the
  file. Re-sending a file therefore produces the same ids and adds nothing,
  while genuinely repeated rows (the same purchase twice in a day) get
  different ids and are all kept.

## Identities

- Identifiers are nodes (`customer_id`, `anonymous_id`, `phone`, `email`,
  `wechat_openid`, `wechat_unionid`, `external_id`); evidence links them into clusters, one
  cluster per person. Evidence: a customer row links its `customer_id` to its
  phone, e-mail and WeChat ids; an event carrying both `customer_id` and
  `anonymous_id` links them; an `identify` event links its `anonymous_id`
  (else its `customer_id`) to the `email`, `phone`, WeChat ids and
  `external_ids` in its properties.
- A cluster holds at most one known customer. A link that would join two known
  customers (a family sharing a phone) is not applied: it is recorded in
  `identity_conflicts` and the first claim stays.
- Every applied merge is recorded in `identity_merges` with its evidence.
- Phones are normalised to E.164 (`+8613812345678`); in customer rows, numbers
  without `+` are read as numbers of the setting `default_phone_region`
  ({region}). Values containing letters are invalid. E-mails are trimmed, lower-cased and
  NFC-normalised; dots and `+tags` are kept. An invalid phone or e-mail in a
  customer row quarantines the row."""


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


if __name__ == "__main__":
    main()
