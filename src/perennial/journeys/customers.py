"""What a running journey needs to know about its customers, asked in batches.

Branch conditions are segment-language expressions evaluated by the segments'
evaluator over the warehouse, restricted to the customers at that step; template
variables are the same frame's profile fields. One query per batch and step,
never one per customer. The protocol lets the runtime be exercised on a fixed
table of profiles in unit tests; the stories run on the warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from perennial.config import Settings
from perennial.segments.evaluation import open_evaluation
from perennial.segments.parser import parse_expression

__all__ = ["CustomerContext", "WarehouseCustomers"]


class CustomerContext(Protocol):
    def profiles(self, customers: Sequence[str], now: datetime) -> Mapping[str, Mapping[str, Any]]:
        """Each known customer's profile fields (unknown customers are left out)."""
        ...

    def holding(self, condition: str, customers: Sequence[str], now: datetime) -> set[str]:
        """Which of ``customers`` satisfy ``condition`` (segment language) at ``now``."""
        ...


class WarehouseCustomers:
    """Profiles and conditions from the newest warehouse snapshot."""

    def __init__(self, settings: Settings, operational: sa.Engine) -> None:
        self._settings = settings
        self._operational = operational

    def profiles(self, customers: Sequence[str], now: datetime) -> Mapping[str, Mapping[str, Any]]:
        if not customers:
            return {}
        with open_evaluation(
            self._settings, self._operational, customers=customers, now=now
        ) as evaluation:
            rows = evaluation.backend.to_pyarrow(evaluation.frame).to_pylist()
        return {str(row["customer_id"]): row for row in rows if row.get("customer_id")}

    def holding(self, condition: str, customers: Sequence[str], now: datetime) -> set[str]:
        if not customers:
            return set()
        expression = parse_expression(condition)
        with open_evaluation(
            self._settings, self._operational, customers=customers, now=now
        ) as evaluation:
            return set(evaluation.members(expression))
