"""A small demo shop for the churn tests: generated and ingested once per test session.

1,000 customers over 2024-2025 (seed 5) give about 800 labelled customers per
recent cut-off, enough for the default churn config, in a few seconds. The
trained default model is cached too, since several test modules read it. Tests
only read this store; a test that writes (the CLI's registry) points its home
elsewhere and reuses the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.demo import DemoDataset, generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.models.churn_config import CHURN_PRESETS
from perennial.models.churn_model import ChurnModel, train_churn_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse

CUSTOMERS = 1000
SEED = 5
START = date(2024, 1, 1)
END = date(2025, 12, 31)


@dataclass(frozen=True)
class ChurnDemo:
    settings: Settings
    dataset: DemoDataset

    def ground_truth(self) -> pa.Table:
        return pq.read_table(self.dataset.ground_truth)


_built: list[ChurnDemo] = []
_models: list[ChurnModel] = []


def churn_demo(factory: pytest.TempPathFactory) -> ChurnDemo:
    """The session's demo store, built on first use."""
    if not _built:
        _built.append(_build(factory.mktemp("churn-demo")))
    return _built[0]


def trained_demo_model(factory: pytest.TempPathFactory) -> ChurnModel:
    """The default (purchase) churn model trained on the demo, trained on first use."""
    if not _models:
        demo = churn_demo(factory)
        with open_backend(demo.settings) as backend:
            snapshot = Warehouse(demo.settings.warehouse).snapshot()
            _models.append(train_churn_model(backend, snapshot, CHURN_PRESETS["purchase"]))
    return _models[0]


def ingest_dataset(dataset: DemoDataset, settings: Settings) -> None:
    for demo_file in dataset.files:
        ingest_file(demo_file.path, settings, table=demo_file.table)


def _build(root: Path) -> ChurnDemo:
    settings = Settings(home=root / "home")
    dataset = generate_demo(root / "sources", customers=CUSTOMERS, seed=SEED, start=START, end=END)
    ingest_dataset(dataset, settings)
    return ChurnDemo(settings, dataset)
