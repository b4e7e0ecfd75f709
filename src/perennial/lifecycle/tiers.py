"""The value pyramid (用户价值金字塔): top 1 %, next 9 %, next 40 %, and the rest.

Tiers rank customers on one value column: monetary to date now, predicted CLV
once a model writes it. Only customers with a positive value are ranked (they
are the population the percentages refer to); null, zero or negative value is
always ``rest``. Ties never split: equal values share the higher tier, so the
result does not depend on row order or engine (see ``docs/rfm.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.lifecycle.narrow_join import is_wide, join_narrow

__all__ = [
    "VALUE_TIER_COLUMN",
    "VALUE_TIER_LABELS",
    "TierLabel",
    "ValueTier",
    "assign_value_tiers",
]

VALUE_TIER_COLUMN: Final = "value_tier"
"""The column :func:`assign_value_tiers` adds."""


class ValueTier(StrEnum):
    """A layer of the pyramid, named for the top share of customers it ends at."""

    TOP_1 = "top_1"
    """The top 1 % by value."""
    TOP_10 = "top_10"
    """The next 9 % (top 10 % without the top 1 %)."""
    TOP_50 = "top_50"
    """The next 40 % (top 50 % without the top 10 %)."""
    REST = "rest"
    """Everyone else, including every customer without a positive value."""


@dataclass(frozen=True, slots=True)
class TierLabel:
    """What operators read: a tier's name in English and in Chinese."""

    en: str
    zh: str


VALUE_TIER_LABELS = MappingProxyType(
    {
        ValueTier.TOP_1: TierLabel(en="Top 1 %", zh="顶级客户"),
        ValueTier.TOP_10: TierLabel(en="Top 10 %", zh="高价值客户"),
        ValueTier.TOP_50: TierLabel(en="Top 50 %", zh="中价值客户"),
        ValueTier.REST: TierLabel(en="Rest", zh="普通客户"),
    }
)
"""Display labels of each tier, in the pyramid's order from the top."""

_CUMULATIVE_SHARES: tuple[tuple[ValueTier, int], ...] = (
    (ValueTier.TOP_1, 100),
    (ValueTier.TOP_10, 10),
    (ValueTier.TOP_50, 2),
)
"""Each tier ends at 1/k of the ranked customers; kept as integers so edges are exact."""


def assign_value_tiers(table: ir.Table, value_column: str = "monetary_total") -> ir.Table:
    """Add ``value_tier`` (a :class:`ValueTier` value) from ``value_column``, highest first.

    A customer's position is the number of ranked customers with a strictly
    higher value; the customer is in the first tier whose share of the ranked
    population exceeds that position (position < N/100 is ``top_1``, < N/10
    ``top_10``, < N/2 ``top_50``). So 1,000 distinct values give 10 / 90 / 400
    / 500, the top customer is always ``top_1``, and a group tied across an
    edge all take the higher tier (the tier may hold a few more than its share).
    """
    if value_column not in table.columns:
        raise ValueError(
            f"assign_value_tiers: no column {value_column!r}; the table has "
            f"{', '.join(table.columns)}"
        )
    value = table[value_column]
    if not value.type().is_numeric():
        raise ValueError(f"assign_value_tiers: {value_column!r} is {value.type()}, not a number")
    if not is_wide(table):
        return table.mutate(**{VALUE_TIER_COLUMN: _tier(value)})
    if "customer_id" not in table.columns:  # the key that brings the narrow ranks back
        raise ValueError("assign_value_tiers: a wide table needs a customer_id column")
    narrow = table.select(tier_customer_id=table.customer_id, tier_value=value)
    tiers = narrow.select("tier_customer_id", **{VALUE_TIER_COLUMN: _tier(narrow.tier_value)})
    return join_narrow(table, tiers, "tier_customer_id", (VALUE_TIER_COLUMN,))


def _tier(value: ir.NumericColumn) -> ir.StringValue:
    """The tier of each value: its position among positive values against the edges."""
    valued = (value > 0).fill_null(False)
    position = ibis.rank().over(ibis.window(group_by=valued, order_by=value.desc()))
    ranked = valued.count().over(ibis.window(group_by=valued))
    return ibis.cases(
        (~valued, ValueTier.REST.value),
        *((position * k < ranked, tier.value) for tier, k in _CUMULATIVE_SHARES),
        else_=ValueTier.REST.value,
    )
