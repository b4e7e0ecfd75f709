"""Partial customer records (the API's identify calls) completed into whole rows.

An identify call names only what it knows now (a new e-mail, one more
attribute); the customers table holds one whole row per customer. Each update
is laid over the customer's row as stored, and over the earlier updates of the
same batch, so that under ``latest_wins`` the newest complete row replaces the
old one and no attribute given before is lost. A field left out (or null)
keeps its stored value; ``attributes`` merge key by key. Folding the same
updates again over a row that already holds them yields that row: a repeated
drain changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

from perennial.config import Settings
from perennial.ingest.records import timestamp_text
from perennial.schema.tables import TABLES, Kind
from perennial.store.engine import connect
from perennial.store.warehouse import Warehouse

__all__ = ["fold_customer_updates", "stored_customer_records"]

_CUSTOMERS = TABLES["customers"]


def fold_customer_updates(
    updates: Sequence[dict[str, Any]], settings: Settings
) -> list[dict[str, Any]]:
    """One whole record per update, in order: the stored row, then each update on top."""
    ids = sorted({str(u["customer_id"]) for u in updates if u.get("customer_id")})
    current = stored_customer_records(settings, ids)
    folded: list[dict[str, Any]] = []
    for update in updates:
        customer_id = update.get("customer_id")
        if not customer_id:
            folded.append(dict(update))
            continue
        record = _laid_over(current.get(str(customer_id), {}), update)
        current[str(customer_id)] = record
        folded.append(record)
    return folded


def stored_customer_records(
    settings: Settings, customer_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The stored rows of ``customer_ids`` as records (the form ingest reads), by id."""
    paths = Warehouse(settings.warehouse).snapshot().paths(_CUSTOMERS.name)
    if not paths or not customer_ids:
        return {}
    columns = ", ".join(f'"{name}"' for name in _CUSTOMERS.column_names)
    con = connect(settings)
    try:
        result = con.execute(
            f"SELECT {columns} FROM read_parquet(?) "  # noqa: S608 (schema column names)
            "WHERE customer_id IN (SELECT unnest(?))",
            [paths, customer_ids],
        )
        rows = result.fetchall()
    finally:
        con.close()
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = {
            column.name: _as_record_value(column.kind, value)
            for column, value in zip(_CUSTOMERS.columns, row, strict=True)
            if value is not None
        }
        records[str(record["customer_id"])] = record
    return records


def _laid_over(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    record = dict(base)
    for name, value in update.items():
        if value is None:
            continue
        if name == "attributes" and isinstance(value, dict):
            merged = {**(record.get("attributes") or {}), **value}
            record["attributes"] = merged
        else:
            record[name] = value
    return record


def _as_record_value(kind: Kind, value: object) -> Any:
    """A stored value in the form an API record carries it (it converts back to itself)."""
    if kind is Kind.TIMESTAMP and isinstance(value, datetime):
        return timestamp_text(value)
    if kind is Kind.DATE and isinstance(value, date):
        return value.isoformat()
    if kind is Kind.JSON and isinstance(value, str):
        return orjson.loads(value)
    return value
