"""The published CDNOW cohort as BTYD summaries, built exactly as tests/features/test_btyd does.

2,357 customers who first bought at CDNOW in Q1 1997; calibration is the 39 weeks
through 1997-09-30 (New York days) and the holdout the 39 weeks to 1998-06-30
(weeks 40-78). Time is in weeks (``unit_days=7``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa

from perennial.config import Settings
from perennial.features import summary_for_btyd
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.conftest import DATA, NOW

EXAMPLES = Path(__file__).parents[2] / "examples" / "mappings"
NEW_YORK = ZoneInfo("America/New_York")
CALIBRATION_END = datetime(1997, 10, 1, tzinfo=NEW_YORK)
"""Calibration covers 1997-01-01 .. 1997-09-30 (New York days), 39 weeks."""
HOLDOUT_END = datetime(1998, 7, 1, tzinfo=NEW_YORK)
HOLDOUT_WEEKS = 39.0
"""Weeks 40-78: 1997-10-01 .. 1998-06-30 is 273 days."""


def ingest_cdnow(home: Path) -> Settings:
    """A store holding the 6,919 CDNOW sample transactions."""
    settings = Settings(home=home)
    mapping = load_mapping(EXAMPLES / "cdnow_sample.yaml")
    report = ingest_file(DATA / "CDNOW_sample.txt", settings, mapping=mapping, now=NOW)
    assert (report.accepted, report.quarantined) == (6_919, 0)
    return settings


def cdnow_summary(settings: Settings, end: datetime) -> pa.Table:
    """``summary_for_btyd`` in weeks up to ``end``, as the pyarrow table models read."""
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        expr = summary_for_btyd(backend, snapshot, end, unit_days=7, timezone="America/New_York")
        return backend.to_pyarrow(expr.order_by("customer_id"))
