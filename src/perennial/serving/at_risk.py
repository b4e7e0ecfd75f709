"""The at-risk list: customers whose churn risk passes a threshold, most valuable first.

The seeds' "高价值用户流失预警": an operations team calls back the customers it would
lose the most by losing. Rows come from the serving store's ``customers`` table
(churn columns filled by ``perennial predict``), walked by a partial index per sort
(:data:`~perennial.serving.schema.AT_RISK_SORTS`), paginated by key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = ["AtRiskFilter", "AtRiskRow", "AtRiskSort", "at_risk_customers"]

AtRiskSort = Literal["clv", "churn_probability", "monetary"]
_COLUMNS = (
    "customer_id, name, stage, rfm_segment, value_tier, monetary, phone, email, "
    "churn_probability, churn_risk_band, clv, churn_reasons_en, churn_reasons_zh"
)


@dataclass(frozen=True, slots=True)
class AtRiskFilter:
    min_probability: float = 0.5
    stage: str | None = None
    value_tier: str | None = None
    risk_band: str | None = None


@dataclass(frozen=True, slots=True)
class AtRiskRow:
    customer_id: str
    name: str | None
    stage: str | None
    rfm_segment: str | None
    value_tier: str | None
    monetary: float
    phone: str | None
    email: str | None
    churn_probability: float
    churn_risk_band: str
    clv: float | None
    reasons_en: list[str]
    reasons_zh: list[str]

    def sort_key(self, sort: AtRiskSort) -> list[Any]:
        value = {"clv": self.clv, "churn_probability": self.churn_probability}.get(
            sort, self.monetary
        )
        return [value, self.customer_id]


def at_risk_customers(
    connection: sqlite3.Connection,
    where: AtRiskFilter,
    *,
    sort: AtRiskSort = "clv",
    after: Sequence[Any] | None = None,
    limit: int = 50,
) -> list[AtRiskRow]:
    """Customers at or above ``where.min_probability``, by ``sort`` descending."""
    clauses = ["churn_probability IS NOT NULL", "churn_probability >= ?"]
    values: list[Any] = [where.min_probability]
    for column, value in (
        ("stage", where.stage),
        ("value_tier", where.value_tier),
        ("churn_risk_band", where.risk_band),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if after is not None:  # nulls (no CLV) sort last: compare through coalesce
        clauses.append(f"(coalesce({sort}, -1e308), customer_id) < (?, ?)")
        values.extend([-1e308 if after[0] is None else after[0], after[1]])
    query = (
        f"SELECT {_COLUMNS} FROM customers "  # noqa: S608 (fixed names; values bound)
        f"WHERE {' AND '.join(clauses)} "
        f"ORDER BY coalesce({sort}, -1e308) DESC, customer_id DESC LIMIT ?"
    )
    rows = connection.execute(query, (*values, limit)).fetchall()
    return [_row(row) for row in rows]


def _row(row: tuple[Any, ...]) -> AtRiskRow:
    (customer_id, name, stage, segment, tier, monetary, phone, email, probability, band, clv) = row[
        :-2
    ]
    reasons_en, reasons_zh = row[-2:]
    return AtRiskRow(
        customer_id,
        name,
        stage,
        segment,
        tier,
        monetary,
        phone,
        email,
        probability,
        band,
        clv,
        orjson.loads(reasons_en) if reasons_en else [],
        orjson.loads(reasons_zh) if reasons_zh else [],
    )
