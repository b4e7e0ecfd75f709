"""A small demo warehouse with profiles, 45 days of stage history and its serving store.

Built once per test session (generating, ingesting and backfilling takes tens of
seconds) and shared by the serving and API tests, which only read it; a test that
refreshes writes its own serving file elsewhere. Besides the demo's own data it
holds a customer whose id needs escaping in a URL and a CRM id linked by an
``identify`` event, for the search and path tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.backfill import backfill
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import as_of_instant, build_profiles, store_profiles
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.serving import ServingSummary, refresh_serving
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.ingest.factories import orders_csv

CUSTOMERS = 250
SEED = 11
END = date(2025, 12, 31)
HISTORY_DAYS = 45
TRICKY_ID = "客户/甲 01?#%"
"""A customer id with a slash, a space, URL delimiters and Chinese characters."""
CRM_CUSTOMER = "C0000005"
CRM_ID = "CRM-0042"


@dataclass(frozen=True)
class DemoStore:
    settings: Settings
    model: StageModel
    end: date
    history_start: date
    summary: ServingSummary


_built: list[DemoStore] = []


def demo_store(factory: pytest.TempPathFactory) -> DemoStore:
    """The session's demo store, built on first use."""
    if not _built:
        _built.append(_build(factory.mktemp("serving-demo")))
    return _built[0]


def _build(root: Path) -> DemoStore:
    settings = Settings(home=root / "home")
    dataset = generate_demo(root / "sources", customers=CUSTOMERS, seed=SEED, end=END)
    for demo_file in dataset.files:
        ingest_file(demo_file.path, settings, table=demo_file.table)
    for path, table in _extra_sources(root / "sources"):
        ingest_file(path, settings, table=table)
    model = load_stage_model(resolve_model_path("seed000"))
    zone = model.timezone or settings.default_timezone
    warehouse = Warehouse(settings.warehouse)
    with open_backend(settings) as backend:
        expression = build_profiles(
            backend,
            warehouse.snapshot(),
            as_of_instant(END.isoformat(), zone),
            model,
            timezone=zone,
        )
        store_profiles(warehouse, backend.to_pyarrow(expression), "profiles")
    start = END - timedelta(days=HISTORY_DAYS - 1)
    with open_backend(settings) as backend:
        backfill(backend, warehouse.snapshot(), model, start, END, timezone=zone)
    summary = refresh_serving(settings, model)
    return DemoStore(settings, model, END, start, summary)


def _extra_sources(folder: Path) -> list[tuple[Path, str]]:
    orders = orders_csv(
        folder / "tricky-orders.csv",
        f"T1,{TRICKY_ID},2025-12-01T02:00:00Z,80,CNY,paid",
        f"T2,{TRICKY_ID},2025-12-20T02:00:00Z,120.5,CNY,paid",
    )
    identify = {
        "event_id": "X-CRM-1",
        "customer_id": CRM_CUSTOMER,
        "anonymous_id": None,
        "event_type": "identify",
        "ts": "2025-11-30T08:00:00Z",
        "properties": {"external_ids": {"crm": CRM_ID}},
    }
    events = folder / "crm-identify.jsonl"
    events.write_bytes(orjson.dumps(identify) + b"\n")
    return [(orders, "orders"), (events, "events")]
