"""What ``generate_demo`` hands back: the files to ingest, in order, and the answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

__all__ = ["DemoDataset", "DemoFile"]


@dataclass(frozen=True)
class DemoFile:
    """One written file: its absolute path, canonical table, format and row count.

    ``rows`` counts data rows (not the CSV header) including deliberately broken ones.
    """

    path: Path
    table: str  # "customers" | "orders" | "order_items" | "events"
    format: str  # "csv" | "parquet" | "jsonl"
    rows: int


@dataclass(frozen=True)
class DemoDataset:
    """A generated demo: ``files`` in ingest order (customers, orders, order items, events).

    ``ground_truth`` is a Parquet file of latent traits for grading models, never
    an ingest input. ``dirty_rows`` counts the rows deliberately broken across all
    files; ``orders`` and ``events`` count every written row, broken ones included.
    """

    files: tuple[DemoFile, ...]
    ground_truth: Path
    customers: int
    orders: int
    events: int
    dirty_rows: int
    end: date
    """The last day of the simulated period (UTC): the natural as-of for the demo."""
