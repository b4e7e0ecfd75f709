"""What a running journey needs to know about its customers, asked in batches.

Branch conditions are segment-language expressions evaluated by the segments'
evaluator over the warehouse, restricted to the customers at that step; template
variables are the same frame's profile fields. One query per batch and step,
never one per customer. The protocol lets the runtime be exercised on a fixed
table of profiles in unit tests; the stories run on the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from perennial.config import Settings
from perennial.segments.evaluation import open_evaluation
from perennial.segments.frame import fields_of
from perennial.segments.parser import parse_expression
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Warehouse

__all__ = ["CustomerContext", "WarehouseCustomers"]


class CustomerContext(Protocol):
    def profiles(self, customers: Sequence[str], now: datetime) -> Mapping[str, Mapping[str, Any]]:
        """Each known customer's profile fields (unknown customers are left out)."""
        ...

    def holding(self, condition: str, customers: Sequence[str], now: datetime) -> set[str]:
        """Which of ``customers`` satisfy ``condition`` (segment language) at ``now``."""
        ...


class WarehouseCustomers:
    """Profiles and conditions from the newest warehouse snapshot.

    Profiles are read through one DuckDB connection kept open, each source filtered
    to the batch's customers before they are joined (:func:`fields_of`), rather than
    opening a session over the whole frame for every batch (a fixed cost per batch).
    """

    def __init__(self, settings: Settings, operational: sa.Engine) -> None:
        self._settings = settings
        self._operational = operational
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def profiles(self, customers: Sequence[str], now: datetime) -> Mapping[str, Mapping[str, Any]]:
        del now  # profiles are as of their computation; the frame adds no time fields here
        if not customers:
            return {}
        snapshot = Warehouse(self._settings.warehouse).snapshot()
        if snapshot.version == 0:
            return {}
        with self._lock:
            if self._backend is None:
                self._backend = open_backend(self._settings)
            rows = self._backend.to_pyarrow(fields_of(self._backend, snapshot, customers))
        return {str(row["customer_id"]): row for row in rows.to_pylist() if row.get("customer_id")}

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
            self._backend = None

    def holding(self, condition: str, customers: Sequence[str], now: datetime) -> set[str]:
        if not customers:
            return set()
        expression = parse_expression(condition)
        with open_evaluation(
            self._settings, self._operational, customers=customers, now=now
        ) as evaluation:
            return set(evaluation.members(expression))
