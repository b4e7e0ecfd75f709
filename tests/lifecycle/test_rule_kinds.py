"""Rules are kind-checked against the known features when they are loaded, naming the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial.lifecycle.rule_errors import ParseError
from perennial.lifecycle.rule_parser import parse_rule
from perennial.lifecycle.rule_types import ValueKind, infer_kind
from perennial.lifecycle.rules import FEATURE_KINDS, KNOWN_FEATURES, Rule


@pytest.mark.parametrize(
    "text",
    [
        "recency_days > 1.5 * max(own_median_interval_days, category_median_interval_days)",
        "frequency_orders >= 5 and monetary_total >= 2000",
        "first_order_at is null",
        "tenure_days <= 30 and frequency_orders == 1",
        "coalesce(logins_30d, 0) == 0",
        "acquisition_channel in ('paid_search', 'social')",
        "not (rfm_r between 1 and 3)",
        "first_order_at < last_order_at",
        "coalesce(favourite_category, 'none') != 'books'",
        "greatest(first_order_at, first_seen_at) <= as_of",
        "rfm_segment in ('champions', 'loyal') or value_tier == 'top_1'",
        "(recency_days > 1) is null",
    ],
)
def test_well_kinded_rules_over_known_features_are_accepted(text: str) -> None:
    assert Rule.parse(text).text == text


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        (
            "recency_days",
            "a rule must be a condition (true or false), but 'recency_days' is a number",
            1,
        ),
        ("recency_days + 1", "a rule must be a condition (true or false), but this is a number", 1),
        (
            "acquisition_channel > 3",
            "'>' compares values of one kind ('acquisition_channel' is text), "
            "but the number 3 is a number",
            23,
        ),
        (
            "recency_days and frequency_orders > 1",
            "'and' joins conditions, but 'recency_days' is a number",
            1,
        ),
        ("frequency_orders > 1 or 'x'", "'or' joins conditions, but the string 'x' is text", 25),
        ("not recency_days", "'not' needs a condition, but 'recency_days' is a number", 5),
        (
            "recency_days + acquisition_channel > 1",
            "'+' needs numbers, but 'acquisition_channel' is text",
            16,
        ),
        ("-favourite_category == 'x'", "'-' needs a number, but 'favourite_category' is text", 2),
        ("abs(first_order_at) > 1", "abs() needs a number, but 'first_order_at' is a timestamp", 5),
        (
            "max(recency_days, acquisition_channel) > 1",
            "max() needs values of one kind, but 'acquisition_channel' is text",
            19,
        ),
        (
            "coalesce(recency_days > 1, frequency_orders > 1)",
            "coalesce() takes values, not conditions",
            10,
        ),
        ("(recency_days > 1) == (frequency_orders > 1)", "'==' compares values, not conditions", 2),
        (
            "first_order_at > 3",
            "'>' compares values of one kind ('first_order_at' is a timestamp)",
            18,
        ),
        (
            "first_order_at in (1)",
            "'in' lists numbers or text, but 'first_order_at' is a timestamp",
            1,
        ),
        (
            "acquisition_channel in ('social', 3)",
            "'in' needs values of one kind ('acquisition_channel' is text), "
            "but the number 3 is a number",
            35,
        ),
        (
            "rfm_r between 'a' and 5",
            "'between' compares values of one kind ('rfm_r' is a number), "
            "but the string 'a' is text",
            15,
        ),
        ("value_tier >= 4", "but the number 4 is a number", 15),
    ],
)
def test_values_that_do_not_go_together_are_an_error_at_the_column(
    text: str, reason: str, column: int
) -> None:
    with pytest.raises(ParseError) as caught:
        Rule.parse(text)
    assert reason in caught.value.reason
    assert caught.value.column == column


def test_every_known_feature_has_a_kind_and_rfm_scores_are_numbers() -> None:
    assert set(FEATURE_KINDS) == set(KNOWN_FEATURES)
    assert len(KNOWN_FEATURES) == len(set(KNOWN_FEATURES)) == 67
    assert FEATURE_KINDS["rfm_m"] is ValueKind.NUMBER
    assert FEATURE_KINDS["value_tier"] is ValueKind.TEXT
    assert FEATURE_KINDS["expected_next_order_at"] is ValueKind.TIMESTAMP
    assert {"refund_requests_90d", "coupon_redemptions_1d", "page_views_7d"} <= set(KNOWN_FEATURES)


def test_a_kind_check_without_known_features_names_the_unknown_one() -> None:
    text = "recency_dys > 1"
    with pytest.raises(
        ParseError, match=r"unknown feature 'recency_dys' \(did you mean 'recency_days'"
    ):
        infer_kind(parse_rule(text), FEATURE_KINDS, text)


def test_a_rule_knows_which_features_it_reads() -> None:
    rule = Rule.parse("recency_days > 2 * coalesce(own_median_interval_days, recency_days)")
    assert rule.features == ("recency_days", "own_median_interval_days")


def test_the_example_rules_in_the_lifecycle_guide_parse_and_check() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    examples = guide.split("Examples:\n\n```\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(examples) >= 8
    for text in examples:
        Rule.parse(text)
