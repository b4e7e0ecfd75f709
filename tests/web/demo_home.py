"""The dashboard tests' data: the session's demo store plus customers with hostile text.

Starts from the serving tests' demo warehouse (``tests/serving/demo_store.py``:
generated, ingested, profiled, 45 days of stage history), copies it (the shared
one is never written), ingests two customers whose name, attributes, an event's
properties and an event type are script and SQL injection strings, recomputes
the profiles and refreshes a serving store of its own. Built once per session.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.profiles import as_of_instant, build_profiles, store_profiles
from perennial.serving import refresh_serving
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.ingest.factories import orders_csv
from tests.serving.demo_store import DemoStore, demo_store

SCRIPT_NAME = "<script>alert(1)</script>"
SQL_NAME = "'; DROP TABLE customers; --"
SCRIPT_CUSTOMER = "INJ-<b>1</b>"
SQL_CUSTOMER = "INJ-2'; DROP TABLE orders; --"
HOSTILE_REGION = '"><img src=x onerror=alert(2)>'
HOSTILE_ATTRIBUTE = "<svg onload=alert(3)>"
HOSTILE_QUERY = "</script><script>alert(4)</script>"
HOSTILE_EVENT_TYPE = "x<img src=y onerror=alert(5)>"
HOSTILE_TEXTS = (SCRIPT_NAME, SQL_NAME, HOSTILE_REGION, HOSTILE_ATTRIBUTE, HOSTILE_QUERY)
SCRIPT_PHONE = "+8613800001111"
SCRIPT_EMAIL = "hostile.user@example.com"


@dataclass(frozen=True)
class WebDemo:
    """The seeded stores; give each app its own home (operational store) on top."""

    demo: DemoStore
    warehouse: Path
    serving: Path

    def settings(self, home: Path, **overrides: object) -> Settings:
        return self.demo.settings.model_copy(
            update={
                "home": home,
                "warehouse_path": self.warehouse,
                "serving_path": self.serving,
                **overrides,
            }
        )


_built: list[WebDemo] = []


def web_demo(factory: pytest.TempPathFactory) -> WebDemo:
    """The session's web demo, built on first use."""
    if not _built:
        _built.append(_build(demo_store(factory), factory.mktemp("web-demo")))
    return _built[0]


def _build(demo: DemoStore, root: Path) -> WebDemo:
    warehouse = root / "warehouse"
    source = demo.settings.warehouse
    shutil.copytree(source, warehouse, ignore=shutil.ignore_patterns("_*"))
    shutil.copytree(source / "_manifests", warehouse / "_manifests")
    settings = demo.settings.model_copy(
        update={
            "home": root / "build",
            "warehouse_path": warehouse,
            "serving_path": root / "serving.db",
        }
    )
    for path, table in _hostile_sources(root / "sources"):
        report = ingest_file(path, settings, table=table)
        assert report.quarantined == 0, report
    zone = demo.model.timezone or settings.default_timezone
    store = Warehouse(settings.warehouse)
    with open_backend(settings) as backend:
        expression = build_profiles(
            backend,
            store.snapshot(),
            as_of_instant(demo.end.isoformat(), zone),
            demo.model,
            timezone=zone,
        )
        store_profiles(store, backend.to_pyarrow(expression), "profiles")
    refresh_serving(settings, demo.model)
    return WebDemo(demo, warehouse, settings.serving_database)


def _hostile_sources(folder: Path) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True)
    customers = [
        {
            "customer_id": SCRIPT_CUSTOMER,
            "created_at": "2025-06-01T02:00:00Z",
            "name": SCRIPT_NAME,
            "phone": SCRIPT_PHONE,
            "email": SCRIPT_EMAIL,
            "region": HOSTILE_REGION,
            "attributes": orjson.dumps({"note": HOSTILE_ATTRIBUTE, "level": 3}).decode(),
        },
        {"customer_id": SQL_CUSTOMER, "created_at": "2025-06-02T02:00:00Z", "name": SQL_NAME},
    ]
    events = [
        {
            "event_id": "INJ-E1",
            "customer_id": SCRIPT_CUSTOMER,
            "anonymous_id": None,
            "event_type": "search",
            "ts": "2025-12-20T03:00:00Z",
            "properties": {"query": HOSTILE_QUERY},
        },
        {
            "event_id": "INJ-E2",
            "customer_id": SQL_CUSTOMER,
            "anonymous_id": None,
            "event_type": HOSTILE_EVENT_TYPE,
            "ts": "2025-12-21T03:00:00Z",
            "properties": {"comment": SQL_NAME},
        },
    ]
    customers_file = folder / "hostile-customers.jsonl"
    customers_file.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in customers))
    events_file = folder / "hostile-events.jsonl"
    events_file.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in events))
    orders = orders_csv(
        folder / "hostile-orders.csv",
        f"INJ-O1,{SCRIPT_CUSTOMER},2025-12-02T02:00:00Z,300,CNY,paid",
        f"INJ-O2,{SCRIPT_CUSTOMER},2025-12-22T02:00:00Z,420.5,CNY,paid",
        f'"INJ-O3","{SQL_CUSTOMER}",2025-12-23T02:00:00Z,99,CNY,paid',
    )
    return [(customers_file, "customers"), (events_file, "events"), (orders, "orders")]
