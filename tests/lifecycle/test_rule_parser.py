"""The rule parser: every construct, SQL precedence, and errors that point at the column."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Expression,
    Feature,
    InList,
    IsNull,
    Negate,
    Not,
    Number,
    Or,
    Text,
    depth,
    referenced_features,
)
from perennial.lifecycle.rule_errors import ParseError
from perennial.lifecycle.rule_parser import MAX_DEPTH, MAX_NESTING, parse_rule
from perennial.lifecycle.rules import KNOWN_FEATURES

a, b, c, x = Feature("a"), Feature("b"), Feature("c"), Feature("x")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a > 1.5", Comparison(">", a, Number(1.5))),
        ("a <= -2", Comparison("<=", a, Number(-2))),
        ("a >= .5e1", Comparison(">=", a, Number(5.0))),
        ("a == 'paid_search'", Comparison("==", a, Text("paid_search"))),
        ("a != 'O''Brien'", Comparison("!=", a, Text("O'Brien"))),
        ("a < b", Comparison("<", a, b)),
        ("a is null", IsNull(a)),
        ("a IS NOT NULL", IsNull(a, negated=True)),
        ("a in ('paid_search', 'social')", InList(a, (Text("paid_search"), Text("social")))),
        ("a not in (1, -2.5)", InList(a, (Number(1), Number(-2.5)), negated=True)),
        ("a between 1 and 3", Between(a, Number(1), Number(3))),
        ("a not between b and c + 1", Between(a, b, Arithmetic("+", c, Number(1)), negated=True)),
        ("not (a between 1 and 3)", Not(Between(a, Number(1), Number(3)))),
        ("coalesce(a, 0) == 0", Comparison("==", Call("coalesce", (a, Number(0))), Number(0))),
        ("abs(a) < 1", Comparison("<", Call("abs", (a,)), Number(1))),
        ("MAX(a, b, c) > 0", Comparison(">", Call("max", (a, b, c)), Number(0))),
        (
            "greatest(a, b) > least(b, c)",
            Comparison(">", Call("greatest", (a, b)), Call("least", (b, c))),
        ),
        ("min(a, 2) > 0", Comparison(">", Call("min", (a, Number(2))), Number(0))),
        ("-a > 0", Comparison(">", Negate(a), Number(0))),
        (
            "a / 2 - 1 > 0",
            Comparison(">", Arithmetic("-", Arithmetic("/", a, Number(2)), Number(1)), Number(0)),
        ),
    ],
)
def test_each_construct_parses_to_its_tree(text: str, tree: Expression) -> None:
    assert parse_rule(text) == tree


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a or b and c", Or((a, And((b, c))))),
        ("a and b or c", Or((And((a, b)), c))),
        ("a and b and c", And((a, b, c))),
        ("(a or b) and c", And((Or((a, b)), c))),
        ("not a and b", And((Not(a), b))),
        ("not a > 1", Not(Comparison(">", a, Number(1)))),
        ("a + b * c > 1", Comparison(">", Arithmetic("+", a, Arithmetic("*", b, c)), Number(1))),
        ("a - b - c > 1", Comparison(">", Arithmetic("-", Arithmetic("-", a, b), c), Number(1))),
        ("a / b / c > 1", Comparison(">", Arithmetic("/", Arithmetic("/", a, b), c), Number(1))),
        ("-a * b > 1", Comparison(">", Arithmetic("*", Negate(a), b), Number(1))),
        (
            "x between 1 and 3 and a",
            And((Between(x, Number(1), Number(3)), a)),
        ),
    ],
)
def test_precedence_follows_sql(text: str, tree: Expression) -> None:
    assert parse_rule(text) == tree


def test_keywords_and_function_names_are_case_insensitive_but_features_are_not() -> None:
    assert parse_rule("Recency_Days IS NULL Or NOT b") == Or(
        (IsNull(Feature("Recency_Days")), Not(b))
    )
    with pytest.raises(
        ParseError, match=r"unknown feature 'Recency_Days' \(did you mean 'recency_days'"
    ):
        parse_rule("Recency_Days is null", known_features=KNOWN_FEATURES)


def test_integers_stay_integers_and_a_point_or_exponent_makes_a_float() -> None:
    values = [parse_rule(f"a == {text}").right for text in ("30", "30.", "3e1", "0.25")]
    assert values == [Number(30), Number(30.0), Number(30.0), Number(0.25)]
    assert [type(value.value) for value in values if isinstance(value, Number)] == [
        int,
        float,
        float,
        float,
    ]


def test_nodes_remember_where_their_text_starts() -> None:
    tree = parse_rule("frequency_orders >= 5 and  monetary_total >= 2000")
    assert isinstance(tree, And)
    assert [operand.position for operand in tree.operands] == [0, 27]
    assert referenced_features(tree) == ("frequency_orders", "monetary_total")


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("recency_days > and 3", "expected an operand at column 16, found 'and'", 16),
        ("", "a rule cannot be empty", 1),
        ("   ", "a rule cannot be empty", 1),
        ("(a > 1", "expected ')' (the '(' at column 1 is still open)", 7),
        ("a > 1)", "this ')' closes nothing", 6),
        ("a > 1 b", "expected an operator, 'and', 'or' or the end of the rule", 7),
        ("a = 1", "'=' is not an operator; write '=='", 3),
        ("a <> 1", "write '!=' for 'not equal'", 3),
        ('a == "x"', "strings are written in single quotes", 6),
        ("a > 1 && b", "write 'and' instead of '&'", 7),
        ("a > 1 || b", "write 'or' instead of '|'", 7),
        ("!a", "write 'not' instead of '!'", 1),
        ("a == 'open", "this string has no closing quote", 6),
        ("a < b < c", "comparisons cannot be chained", 7),
        ("recency_days > 30d", "a number cannot run into a name ('30d...')", 16),
        ("a > 1e999", "the number 1e999 is too large", 5),
        ("a > 99999999999999999999", "too large (at most 2**63 - 1)", 5),
        ("a is 3", "expected 'null' or 'not null' after 'is' at column 6, found 3", 6),
        ("a not 3", "expected 'in' or 'between' after 'not'", 7),
        ("a in 'x'", "expected '(' after 'in'", 6),
        ("a in ()", "an 'in' list needs at least one value", 7),
        ("a in (b)", "an 'in' list holds numbers and quoted strings only", 7),
        ("a in (1 2)", "expected ',' or ')' in the 'in' list", 9),
        ("a between 1 or 3", "expected 'and' between the two bounds", 13),
        ("a > null", "null is tested with 'is null'", 5),
        ("a == otherwise", "'otherwise' can only be the whole rule of the last stage", 6),
        ("max(a) > 1", "max() takes two or more values (it compares values of one customer", 1),
        ("coalesce(a) > 1", "coalesce() takes two or more values", 1),
        ("abs(a, b) > 1", "abs() takes exactly one value, not 2", 1),
        ("x > 1 and maxx(a, b) > 1", "unknown function 'maxx' (did you mean 'max'?)", 11),
        ("sqrt(a) > 1", "unknown function 'sqrt' (functions: abs, coalesce", 1),
        ("max(a, b > 1", "expected ',' or ')' in the arguments of max()", 13),
        ("a > 1 and", "expected an operand at column 10, found the end of the rule", 10),
        ("a > # 1", "unexpected character '#'", 5),
        ("a > \uff11", "unexpected character '\uff11'", 5),  # a full-width digit one
    ],
)
def test_a_malformed_rule_is_a_parse_error_at_the_column(
    text: str, reason: str, column: int
) -> None:
    with pytest.raises(ParseError) as caught:
        parse_rule(text)
    assert reason in str(caught.value)
    assert caught.value.column == column
    assert f"column {column}" in caught.value.summary


def test_the_error_shows_the_rule_with_a_caret_under_the_column() -> None:
    with pytest.raises(ParseError) as caught:
        parse_rule("recency_days > and 3")
    assert str(caught.value) == (
        "expected an operand at column 16, found 'and'\n"
        "    recency_days > and 3\n"
        "                   ^"
    )


def test_the_caret_stays_under_its_column_after_wide_characters() -> None:
    with pytest.raises(ParseError) as caught:
        parse_rule("a == '李四' and")
    assert caught.value.caret_line.splitlines()[1] == "    " + " " * 6 + "  " * 2 + " " * 5 + "^"


def test_a_rule_written_over_several_lines_reports_line_and_column() -> None:
    with pytest.raises(ParseError) as caught:
        parse_rule("frequency_orders >= 5\nand monetary_total >=\n")
    assert caught.value.summary.startswith("expected an operand at line 3, column 1")


def test_an_unknown_feature_is_named_with_close_matches() -> None:
    with pytest.raises(ParseError) as caught:
        parse_rule("recency_day > 1.5 * own_median_interval_days", known_features=KNOWN_FEATURES)
    assert caught.value.summary == (
        "unknown feature 'recency_day' (did you mean 'recency_days'?) at column 1"
    )
    with pytest.raises(
        ParseError, match=r"did you mean 'orders_30d', 'orders_7d' or 'orders_1d'\?"
    ):
        parse_rule("orders_3d > 0", known_features=KNOWN_FEATURES)
    with pytest.raises(ParseError, match=r"unknown feature 'zzz' at column 1"):
        parse_rule("zzz > 0", known_features=KNOWN_FEATURES)
    with pytest.raises(ParseError, match="'recency_days' is a feature, not a function"):
        parse_rule("recency_days(1) > 0", known_features=KNOWN_FEATURES)


def test_deep_nesting_is_a_parse_error_not_a_recursion_error() -> None:
    deep = "(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1) + " > 1"
    with pytest.raises(ParseError, match="nests brackets"):
        parse_rule(deep)
    with pytest.raises(ParseError, match="nests brackets"):
        parse_rule("not " * 1000 + "a")
    with pytest.raises(ParseError, match=f"more than {MAX_DEPTH} levels deep"):
        parse_rule(" + ".join(["a"] * 100) + " > 1")


def test_a_long_chain_of_conditions_stays_flat() -> None:
    tree = parse_rule(" or ".join(f"a == {n}" for n in range(500)))
    assert isinstance(tree, Or) and len(tree.operands) == 500
    assert depth(tree) == 3


_TOKENS = st.sampled_from(
    [
        *"()+-*/,<>=!'\"._",
        "<=",
        ">=",
        "==",
        "!=",
        "and",
        "or",
        "not",
        "is",
        "null",
        "in",
        "between",
        "otherwise",
        "max",
        "coalesce",
        "abs",
        "recency_days",
        "a",
        "1",
        "2.5",
        "'x'",
        "1e5",
    ]
)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(max_size=40), st.lists(_TOKENS, max_size=25).map(" ".join)))
def test_any_text_either_parses_or_raises_parse_error_and_nothing_else(text: str) -> None:
    try:
        parse_rule(text, known_features=[*KNOWN_FEATURES, "a"])
    except ParseError as error:
        assert 1 <= error.column
        assert error.caret_line.endswith("^")


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=string.printable, max_size=60))
def test_printable_garbage_never_escapes_as_another_exception(text: str) -> None:
    try:
        parse_rule(text)
    except ParseError:
        pass
