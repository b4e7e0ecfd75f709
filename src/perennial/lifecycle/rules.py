"""Rules over customer features: the names a rule may use, and a parsed, checked :class:`Rule`.

A rule is a boolean expression such as
``recency_days > 1.5 * coalesce(own_median_interval_days, category_median_interval_days)``.
It is parsed (no ``eval``), checked against the features' kinds when it is
loaded, then compiled to an Ibis expression per table or evaluated on one row
in Python. :data:`KNOWN_FEATURES` is the one list of names rules may use until
the feature registry (:mod:`perennial.features`) replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.lifecycle.rule_ast import Expression, referenced_features
from perennial.lifecycle.rule_compiler import compile_rule, kinds_of_schema
from perennial.lifecycle.rule_errors import MissingFeatureError, ParseError
from perennial.lifecycle.rule_evaluator import evaluate_rule
from perennial.lifecycle.rule_parser import parse_rule
from perennial.lifecycle.rule_types import ValueKind, check_condition

__all__ = ["FEATURE_KINDS", "KNOWN_FEATURES", "OTHERWISE", "Rule"]

OTHERWISE = "otherwise"
"""The rule of a catch-all last stage: true for every customer no earlier stage took."""

_WINDOWED_COUNTS = (
    "logins",
    "page_views",
    "add_to_carts",
    "searches",
    "coupon_redemptions",
    "complaints",
    "refund_requests",
)
_WINDOWS = ("1d", "7d", "30d", "90d")

KNOWN_FEATURES: tuple[str, ...] = (
    "customer_id",
    "as_of",
    "acquisition_channel",
    "first_seen_at",
    "tenure_days",
    "first_order_at",
    "last_order_at",
    "recency_days",
    "frequency_orders",
    "frequency_days",
    "refunded_orders",
    "monetary_total",
    "monetary_mean",
    "monetary_max",
    "own_mean_interval_days",
    "own_median_interval_days",
    "favourite_category",
    "category_median_interval_days",
    "population_median_interval_days",
    "expected_next_order_at",
    "days_to_expected_order",
    "orders_1d",
    "orders_7d",
    "orders_30d",
    "orders_90d",
    "spend_30d",
    "spend_prev_30d",
    *(f"{count}_{window}" for count in _WINDOWED_COUNTS for window in _WINDOWS),
    "days_since_last_login",
    "browse_without_cart_ratio_30d",
    "help_searches_90d",
    "orders_trend_30d",
    "spend_trend_30d",
    "logins_trend_30d",
    "coupon_share",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "value_tier",
)
"""Every name a stage rule may use: the point-in-time features, then what the RFM step adds.

Timestamps are UTC; ``*_days`` are float days; ``rfm_r/f/m`` are scores 1-5 (null
without orders). To be replaced by the feature registry, which also documents them.
"""

_TEXT = frozenset(
    {"customer_id", "acquisition_channel", "favourite_category", "rfm_segment", "value_tier"}
)
_TIMESTAMPS = frozenset(
    {"as_of", "first_seen_at", "first_order_at", "last_order_at", "expected_next_order_at"}
)


def _kind_of(name: str) -> ValueKind:
    if name in _TEXT:
        return ValueKind.TEXT
    return ValueKind.TIMESTAMP if name in _TIMESTAMPS else ValueKind.NUMBER


FEATURE_KINDS: Mapping[str, ValueKind] = MappingProxyType(
    {name: _kind_of(name) for name in KNOWN_FEATURES}
)
"""The kind of each of :data:`KNOWN_FEATURES`, for checking rules when they are loaded."""


@dataclass(frozen=True)
class Rule:
    """A parsed and kind-checked rule, with the text it came from (for messages and saving).

    ``expression`` is ``None`` for :data:`OTHERWISE`, which is true for every row.
    """

    text: str
    expression: Expression | None

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        kinds: Mapping[str, ValueKind] = FEATURE_KINDS,
        allow_otherwise: bool = False,
    ) -> Rule:
        """Parse and check ``text``; raises :class:`ParseError` pointing at the column."""
        if text.strip().lower() == OTHERWISE:
            if not allow_otherwise:
                raise ParseError("'otherwise' is not allowed here", text, text.find(text.strip()))
            return cls(text, None)
        expression = parse_rule(text, known_features=kinds.keys())
        check_condition(expression, kinds, text)
        return cls(text, expression)

    @property
    def is_otherwise(self) -> bool:
        return self.expression is None

    @property
    def features(self) -> tuple[str, ...]:
        """The features the rule reads, in order of first appearance."""
        return () if self.expression is None else referenced_features(self.expression)

    def compile(self, table: ir.Table) -> ir.BooleanValue:
        """An Ibis condition over ``table``, re-checked against the table's actual column types.

        Raises :class:`MissingFeatureError` for an absent column and
        :class:`ParseError` (with the caret) when a column's type does not fit the rule.
        """
        if self.expression is None:
            return ibis.literal(True)
        missing = [name for name in self.features if name not in table.columns]
        if missing:
            raise MissingFeatureError(missing)
        check_condition(self.expression, kinds_of_schema(table.schema()), self.text)
        return compile_rule(self.expression, table)

    def evaluate(self, row: Mapping[str, Any]) -> bool | None:
        """The rule on one row in Python (``None`` is null); the reference for :meth:`compile`."""
        return True if self.expression is None else evaluate_rule(self.expression, row)
