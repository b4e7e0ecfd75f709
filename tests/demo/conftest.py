"""One small demo data set per test session, and readers that tell valid rows from broken ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.demo import DemoDataset, generate_demo

CUSTOMERS = 2_000
SEED = 7
PERIOD_START = datetime(2024, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 1, 1, tzinfo=UTC)  # exclusive: the default end is 2025-12-31


@dataclass(frozen=True)
class DemoTables:
    """A generated data set read back: valid rows only, plus what was broken."""

    dataset: DemoDataset
    customers: pl.DataFrame
    orders: pl.DataFrame
    order_items: pl.DataFrame
    events: pl.DataFrame
    identity: list[dict[str, Any]]
    education: list[dict[str, Any]]
    ground_truth: pl.DataFrame
    broken_lines: int


def read_parquet(dataset: DemoDataset, table: str) -> pa.Table:
    parts = [
        pq.read_table(f.path) for f in dataset.files if f.table == table and f.format == "parquet"
    ]
    return pa.concat_tables(parts)


def read_json_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parsed records with a valid timestamp inside the period, and the count of broken lines."""
    records, broken = [], 0
    for line in path.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
            ts = datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
        except (orjson.JSONDecodeError, ValueError):
            broken += 1
            continue
        if ts >= PERIOD_END:
            broken += 1
            continue
        record["ts"] = ts
        records.append(record)
    return records, broken


def valid_orders(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.filter(
        (pl.col("customer_id") != "")
        & (pl.col("currency") == "CNY")
        & (pl.col("amount") >= 0)
        & (pl.col("placed_at") < PERIOD_END)
    )


def valid_customers(customers: pl.DataFrame) -> pl.DataFrame:
    created = pl.col("created_at").str.to_datetime(
        "%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC"
    )
    known = pl.col("customer_id").is_not_null() & (pl.col("customer_id") != "")
    return customers.filter(known & created.is_not_null()).filter(created < PERIOD_END)


def read_customers(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoTables:
    dataset = generate_demo(tmp_path_factory.mktemp("demo"), customers=CUSTOMERS, seed=SEED)
    identity, broken_identity = read_json_lines(dataset.files[-2].path)
    education, broken_education = read_json_lines(dataset.files[-1].path)
    return DemoTables(
        dataset=dataset,
        customers=valid_customers(read_customers(dataset.files[0].path)),
        orders=valid_orders(pl.from_arrow(read_parquet(dataset, "orders"))),
        order_items=pl.from_arrow(read_parquet(dataset, "order_items")),
        events=pl.from_arrow(read_parquet(dataset, "events")),
        identity=identity,
        education=education,
        ground_truth=pl.from_arrow(pq.read_table(dataset.ground_truth)),
        broken_lines=broken_identity + broken_education,
    )
