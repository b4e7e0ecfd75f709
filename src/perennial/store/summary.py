"""What is in the store: table sizes, the batch log and headline figures."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perennial.config import Settings
from perennial.store.engine import connect
from perennial.store.warehouse import Warehouse

__all__ = ["StoreSummary", "recent_batches", "store_summary"]


@dataclass(frozen=True)
class StoreSummary:
    version: int
    rows: dict[str, int]
    files: dict[str, int]
    customers: int
    orders: int
    events: int
    revenue: dict[str, Decimal]
    """Paid order amounts per currency."""
    quarantined: int


def store_summary(settings: Settings) -> StoreSummary:
    snapshot = Warehouse(settings.warehouse).snapshot()
    rows = {name: snapshot.rows(name) for name in sorted(snapshot.tables)}
    files = {name: len(snapshot.files(name)) for name in sorted(snapshot.tables)}
    revenue: dict[str, Decimal] = {}
    customers = rows.get("customers", 0)
    orders = snapshot.paths("orders")
    if orders:
        con = connect(settings)
        try:
            revenue = dict(
                con.execute(
                    "SELECT currency, sum(amount) FROM read_parquet(?) WHERE status = 'paid' "
                    "GROUP BY currency ORDER BY currency",
                    [orders],
                ).fetchall()
            )
            known = snapshot.paths("customers")
            customers = con.execute(
                "SELECT count(DISTINCT customer_id) FROM (SELECT customer_id FROM "
                "read_parquet(?) UNION ALL SELECT customer_id FROM read_parquet(?))",
                [orders, known or orders],
            ).fetchall()[0][0]
        finally:
            con.close()
    return StoreSummary(
        version=snapshot.version,
        rows=rows,
        files=files,
        customers=customers,
        orders=rows.get("orders", 0),
        events=rows.get("events", 0),
        revenue=revenue,
        quarantined=rows.get("quarantine", 0),
    )


def recent_batches(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    paths = Warehouse(settings.warehouse).snapshot().paths("ingest_batches")
    if not paths:
        return []
    con = connect(settings)
    try:
        relation = con.execute(
            "SELECT batch_id, table_name, source_file, committed_at, rows_read, accepted, "
            "quarantined, duplicates_in_batch, already_stored, superseded_in_batch, replaced "
            "FROM read_parquet(?, union_by_name = true) "
            "ORDER BY committed_at DESC LIMIT ?",
            [paths, limit],
        )
        names = [d[0] for d in relation.description or []]
        return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
    finally:
        con.close()
