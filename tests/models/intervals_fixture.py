"""Purchase-rhythm fixtures: a hand-made store with known gaps, and a small demo store.

``AS_OF`` is 2025-06-01 00:00 UTC (08:00 in Asia/Shanghai, local day 06-01).
Orders are placed at 04:00 UTC (noon in Shanghai) unless a case needs otherwise.

- ``a00``-``a29``: buy coffee every 8-14 days (own base, jitter 0/+1/-1), 8 orders.
- ``b00``-``b19``: buy dog food every 30 days (jitter -2..+2), 4 orders.
- ``once``: a single order with dog food and the only caviar line ever.
- ``few``: tea on three days (two repeat pairs, below any threshold).
- ``sameday``: two orders on one Shanghai day (02:00 and 10:00 UTC) with tea,
  and one ten days earlier.
- ``zero``: three paid orders of amount 0.00, no lines.
- ``overdue``: every 10 days until 60 days before ``AS_OF``.
- ``refunded``: two refunded orders only (no purchase).
- ``late``: a first order exactly at ``AS_OF`` (not yet known).

The expected gaps are computed here from the rows, in plain Python, so the tests
check the engine's purchase days against an independent count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from tests.features.fixture_store import ingest_rows

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
AS_OF_DAY = date(2025, 6, 1)
ZONE = ZoneInfo("Asia/Shanghai")

Order = tuple[str, str, str, str, str, str]  # order_id, customer, placed_at, amount, status, coupon
Item = tuple[str, str, str, str, int]  # item_id, order_id, placed_at, category, quantity


def _stamp(day: date, hour: int = 4) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def _rows() -> tuple[list[Order], list[Item]]:
    orders: list[Order] = []
    items: list[Item] = []

    def buy(customer: str, placed_at: str, *categories: str, status: str = "paid") -> None:
        order_id = f"{customer}-{len(orders)}"
        orders.append((order_id, customer, placed_at, "10.00", status, ""))
        for category in categories:
            items.append((f"{order_id}-{category}", order_id, placed_at, category, 1))

    for number in range(30):
        base, day = 8 + number % 7, AS_OF_DAY - timedelta(days=3 + number % 4)
        for step in range(8):
            buy(f"a{number:02d}", _stamp(day), "coffee")
            day -= timedelta(days=base + (0, 1, -1)[step % 3])
    for number in range(20):
        day = AS_OF_DAY - timedelta(days=5 + number)
        for step in range(4):
            buy(f"b{number:02d}", _stamp(day), "dogfood")
            day -= timedelta(days=30 + (step + number) % 5 - 2)
    buy("once", _stamp(date(2025, 5, 2)), "dogfood", "caviar")
    for day in (date(2025, 4, 1), date(2025, 4, 20), date(2025, 5, 9)):
        buy("few", _stamp(day), "tea")
    buy("sameday", _stamp(date(2025, 5, 20), 2), "tea")
    buy("sameday", _stamp(date(2025, 5, 20), 10), "tea")
    buy("sameday", _stamp(date(2025, 5, 10)), "tea")
    for day in (date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)):
        orders.append((f"zero-{day}", "zero", _stamp(day), "0.00", "paid", ""))
    for step in range(6):
        buy("overdue", _stamp(AS_OF_DAY - timedelta(days=60 + 10 * step)), "coffee")
    buy("refunded", _stamp(date(2025, 5, 5)), "tea", status="refunded")
    buy("refunded", _stamp(date(2025, 5, 15)), "tea", status="refunded")
    buy("late", "2025-06-01T00:00:00Z", "tea")
    return orders, items


ORDERS, ITEMS = _rows()


def build_interval_store(settings: Settings, folder: Path) -> None:
    """Write and ingest the orders and lines above into ``settings``' store."""
    folder.mkdir(parents=True, exist_ok=True)
    ingest_rows(settings, folder, "orders", list(ORDERS))
    ingest_rows(settings, folder, "order_items", list(ITEMS))


def _local_day(placed_at: str) -> date:
    return datetime.fromisoformat(placed_at).astimezone(ZONE).date()


def _paid_before_as_of() -> dict[str, str]:
    """order_id -> placed_at of the paid orders placed before ``AS_OF``."""
    return {
        order_id: placed_at
        for order_id, _, placed_at, _, status, _ in ORDERS
        if status == "paid" and datetime.fromisoformat(placed_at) < AS_OF
    }


def expected_purchase_days() -> dict[str, list[date]]:
    """Each customer's distinct local purchase days before ``AS_OF``, sorted."""
    days: dict[str, set[date]] = defaultdict(set)
    paid = _paid_before_as_of()
    for order_id, customer, placed_at, *_ in ORDERS:
        if order_id in paid:
            days[customer].add(_local_day(placed_at))
    return {customer: sorted(found) for customer, found in days.items()}


def expected_category_gaps(category: str) -> dict[str, list[int]]:
    """Each customer's gaps in days between distinct local purchase days of ``category``."""
    customer_of = {order_id: customer for order_id, customer, *_ in ORDERS}
    paid = _paid_before_as_of()
    days: dict[str, set[date]] = defaultdict(set)
    for _, order_id, placed_at, line_category, _ in ITEMS:
        if line_category == category and order_id in paid:
            days[customer_of[order_id]].add(_local_day(placed_at))
    return {
        customer: [(later - earlier).days for earlier, later in pairwise(sorted(found))]
        for customer, found in days.items()
    }


def statistics_from_days(days_by_customer: dict[str, list[date]]) -> pa.Table:
    """The next-order statistics of purchase days, computed in plain Python.

    Columns as ``perennial.models.next_order.STATISTICS_SCHEMA``; no favourite category.
    """
    rows = []
    for customer, days in days_by_customer.items():
        distinct = sorted(set(days))
        gaps = [float((later - earlier).days) for earlier, later in pairwise(distinct)]
        logs = np.log(gaps) if gaps else np.empty(0)
        rows.append(
            {
                "customer_id": customer,
                "purchase_days": len(distinct),
                "last_purchase_on": distinct[-1],
                "interval_count": len(gaps),
                "log_interval_mean": float(logs.mean()) if gaps else None,
                "log_interval_squares": float((logs**2).sum()) if gaps else None,
                "last_interval_days": gaps[-1] if gaps else None,
                "favourite_category": None,
            }
        )
    return pa.Table.from_pylist(rows)


DEMO_CUSTOMERS = 3000
DEMO_SEED = 3
DEMO_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class DemoIntervals:
    settings: Settings
    end: date


_built: list[DemoIntervals] = []


def demo_intervals(factory: pytest.TempPathFactory) -> DemoIntervals:
    """A 3,000-customer demo store (orders and lines only), built once per session."""
    if not _built:
        root = factory.mktemp("intervals-demo")
        settings = Settings(home=root / "home")
        dataset = generate_demo(root / "sources", customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
        for demo_file in dataset.files:
            if demo_file.table in ("orders", "order_items"):
                ingest_file(demo_file.path, settings, table=demo_file.table)
        _built.append(DemoIntervals(settings, dataset.end))
    return _built[0]
