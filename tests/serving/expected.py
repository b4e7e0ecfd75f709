"""The board's numbers computed straight from the warehouse, to check the serving store by.

Stage counts and flows come from :mod:`perennial.lifecycle.flows` over the stored
stage history; revenue, repeat buyers and the RFM grid from the raw tables, in
plain Python, so a mistake in the refresh's SQL cannot hide in the expectation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from perennial.lifecycle.flows import UNMATCHED, Flow, daily_distribution, flow_matrix
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.serving.demo_store import DemoStore


def warehouse_table(demo: DemoStore, name: str) -> pa.Table:
    snapshot = Warehouse(demo.settings.warehouse).snapshot()
    return pa.concat_tables(pq.read_table(path) for path in snapshot.paths(name))


def distribution(demo: DemoStore, start: date, end: date) -> dict[date, dict[str, int]]:
    """Customers per stage (``(no stage)`` for none) on each day of the stored history."""
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        rows = daily_distribution(backend, snapshot, demo.model.name, start, end).to_pylist()
    by_day: dict[date, dict[str, int]] = defaultdict(dict)
    for row in rows:
        by_day[row["day"]][row["stage"] or UNMATCHED] = row["customers"]
    return dict(by_day)


def stages_on(demo: DemoStore, day: date) -> Counter[str]:
    return Counter(distribution(demo, day, day).get(day, {}))


def flows(demo: DemoStore, start: date, end: date) -> list[Flow]:
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        return flow_matrix(backend, snapshot, demo.model.name, start, end)


def orders_in(demo: DemoStore, start: date, end: date) -> tuple[float, float | None]:
    """Paid revenue placed on local days start..end, and the share of its buyers with 2+ orders."""
    zone = ZoneInfo("Asia/Shanghai")
    revenue = 0.0
    per_customer: Counter[str] = Counter()
    for order in warehouse_table(demo, "orders").to_pylist():
        day = order["placed_at"].astimezone(zone).date()
        if order["status"] == "paid" and start <= day <= end:
            revenue += float(order["amount"])
            per_customer[order["customer_id"]] += 1
    if not per_customer:
        return revenue, None
    repeat = sum(1 for count in per_customer.values() if count >= 2) / len(per_customer)
    return revenue, repeat


def rfm_cells(demo: DemoStore) -> tuple[Counter[tuple[int, int]], Counter[tuple[int, int]]]:
    """Customers and their monetary total per (R, F) cell, from the profiles."""
    customers: Counter[tuple[int, int]] = Counter()
    revenue: Counter[tuple[int, int]] = Counter()
    for row in warehouse_table(demo, PROFILES_TABLE).to_pylist():
        if row["rfm_r"] is not None:
            cell = (row["rfm_r"], row["rfm_f"])
            customers[cell] += 1
            revenue[cell] += row["monetary_total"]
    return customers, revenue


def rfm_segments(demo: DemoStore) -> Counter[str]:
    return Counter(row["rfm_segment"] for row in warehouse_table(demo, PROFILES_TABLE).to_pylist())
