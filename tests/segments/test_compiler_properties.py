"""Properties of the segment language on random expressions and data.

For any well-kinded expression (profile fields, time functions, text matching,
tags, event predicates with filters, counts, windows and sequences) and any
profiles, events and tags (nulls, missing properties, ties at window edges
included), the query compiled for DuckDB gives every customer the same true,
false or null as the plain-Python reference, and the canonical text parses back
to the same tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Feature,
    InList,
    IsNull,
    Not,
    Number,
    Or,
    Text,
)
from perennial.segments.ast import (
    CountBound,
    DateLiteral,
    DateWindow,
    DaysAgo,
    DidEvent,
    EventSpec,
    Expression,
    FollowedBy,
    HasTag,
    LastWindow,
    Now,
    SinceEvent,
    TagValue,
    TextMatch,
    TimeFunction,
    format_expression,
)
from perennial.segments.compiler import EvaluationContext, compile_membership
from perennial.segments.json_form import from_json, to_json
from perennial.segments.kinds import Catalog, check_expression, kinds_of_arrow_schema
from perennial.segments.parser import parse_expression
from perennial.segments.reference import ReferenceData, ReferenceEvent, evaluate_reference
from perennial.store.backends import Backend, open_backend

NOW = datetime(2026, 1, 1, 3, 30, tzinfo=UTC)
ZONE = "Asia/Shanghai"
FRAME_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("orders", pa.int64()),
        ("spend", pa.float64()),
        ("channel", pa.string()),
        ("last_seen_at", pa.timestamp("us", tz="UTC")),
        ("birthday", pa.date32()),
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("event_type", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("properties", pa.string()),
    ]
)
TAG_SCHEMA = pa.schema([("customer_id", pa.string()), ("tag", pa.string()), ("value", pa.string())])
EVENT_TYPES = ("buy", "view")
TAGS = ("vip", "fav")
WORDS = ("", "a", "ab", "b", "上海", "it's")

# Whole days before now often, so events sit exactly on window edges and sequence spans.
_instants = st.one_of(
    st.integers(0, 12).map(lambda days: NOW - timedelta(days=days)),
    st.integers(-24 * 40, 24 * 3).map(lambda hours: NOW + timedelta(hours=hours)),
)
_days = st.dates(min_value=date(1996, 2, 20), max_value=date(2026, 3, 10))
_integers = st.integers(-5, 40)
_floats = st.integers(-400, 400).map(lambda eighths: eighths / 8)
_words = st.sampled_from(WORDS)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


_property_values = st.one_of(_integers, _words, st.sampled_from(["7", "x1", None, True]))
_properties = _maybe(
    st.dictionaries(st.sampled_from(["n", "s", "k"]), _property_values, max_size=3).map(
        lambda document: json.dumps(document, ensure_ascii=False)
    )
)


_whole_days = st.integers(0, 8).map(lambda days: NOW - timedelta(days=days))


@st.composite
def datasets(
    draw: st.DrawFn, instants: st.SearchStrategy[datetime] = _instants
) -> tuple[list[dict[str, Any]], list[ReferenceEvent], dict[tuple[str, str], str | None]]:
    ids = [f"c{i}" for i in range(draw(st.integers(1, 4)))]
    profiles = [
        {
            "customer_id": customer,
            "orders": draw(_maybe(_integers)),
            "spend": draw(_maybe(_floats)),
            "channel": draw(_maybe(_words)),
            "last_seen_at": draw(_maybe(_instants)),
            "birthday": draw(_maybe(_days)),
        }
        for customer in ids
    ]
    events = draw(
        st.lists(
            st.builds(
                ReferenceEvent,
                st.sampled_from(ids),
                st.sampled_from(EVENT_TYPES),
                instants,
                _properties,
            ),
            max_size=20,
        )
    )
    tags = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(ids), st.sampled_from(TAGS)), _maybe(_words), max_size=6
        )
    )
    return profiles, events, tags


# -- expressions ------------------------------------------------------------------

_number_leaf = st.one_of(
    st.sampled_from([Feature("orders"), Feature("spend")]),
    _integers.map(Number),
    _floats.map(Number),
    st.sampled_from(["days_since", "days_until", "days_to_anniversary"]).flatmap(
        lambda f: st.sampled_from([Feature("last_seen_at"), Feature("birthday")]).map(
            lambda field: TimeFunction(f, field)
        )
    ),
)
_numbers = st.recursive(
    _number_leaf,
    lambda inner: st.one_of(
        st.builds(Arithmetic, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
        st.builds(
            Call,
            st.sampled_from(["coalesce", "greatest", "least"]),
            st.lists(inner, min_size=2, max_size=3).map(tuple),
        ),
    ),
    max_leaves=4,
)
_texts = st.one_of(
    st.just(Feature("channel")), _words.map(Text), st.sampled_from(TAGS).map(TagValue)
)
_temporals = st.one_of(
    st.sampled_from([Feature("last_seen_at"), Feature("birthday"), Now()]),
    st.integers(0, 60).map(DaysAgo),
    _days.map(DateLiteral),
)
_comparisons = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def _property_tests() -> st.SearchStrategy[Expression]:
    name = st.sampled_from(["n", "s", "k"]).map(Feature)
    number, text = _integers.map(Number), _words.map(Text)
    test = st.one_of(
        st.builds(Comparison, _comparisons, name, st.one_of(number, text)),
        st.builds(IsNull, name, st.booleans()),
        st.builds(InList, name, st.lists(number, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(InList, name, st.lists(text, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(Between, name, number, number, st.booleans()),
        st.builds(
            TextMatch, st.sampled_from(["contains", "starts_with"]), name, _words, st.booleans()
        ),
    )
    return st.one_of(
        test,
        st.builds(Or, st.lists(test, min_size=2, max_size=3).map(tuple)),
        st.builds(And, st.lists(test, min_size=2, max_size=3).map(tuple)),
    )


_windows = st.one_of(
    st.none(),
    st.none(),
    st.builds(LastWindow, st.integers(1, 12), st.just("days")),
    st.builds(LastWindow, st.integers(1, 72), st.just("hours")),
    st.tuples(_maybe(_days), _maybe(_days))
    .filter(lambda pair: pair != (None, None) and (None in pair or pair[0] <= pair[1]))
    .map(lambda pair: DateWindow(*pair)),
    st.sampled_from(EVENT_TYPES).map(SinceEvent),
)


def _sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` one time in three, else None (``one_of(none(), ...)`` rarely gives None)."""
    return st.integers(0, 2).flatmap(lambda pick: strategy if pick == 0 else st.none())


def _spec(window: st.SearchStrategy[Any]) -> st.SearchStrategy[EventSpec]:
    return st.builds(EventSpec, st.sampled_from(EVENT_TYPES), _sometimes(_property_tests()), window)


_events = st.one_of(
    st.builds(
        DidEvent,
        _spec(_windows),
        _maybe(st.builds(CountBound, st.sampled_from([">=", "<=", "=="]), st.integers(1, 3))),
        st.booleans(),
    ),
    st.builds(
        FollowedBy,
        _spec(_windows),
        _spec(st.none()),
        st.builds(LastWindow, st.integers(1, 6), st.sampled_from(["days", "hours"])),
        st.booleans(),
    ),
)
_profile_conditions = st.one_of(
    st.builds(Comparison, _comparisons, _numbers, _numbers),
    st.builds(Comparison, _comparisons, _texts, _texts),
    st.builds(Comparison, _comparisons, _temporals, _temporals),
    st.builds(IsNull, st.one_of(_numbers, _texts, _temporals), st.booleans()),
    st.builds(
        InList,
        st.just(Feature("channel")),
        st.lists(_words.map(Text), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(Between, _numbers, _numbers, _numbers, st.booleans()),
    st.builds(
        TextMatch, st.sampled_from(["contains", "starts_with"]), _texts, _words, st.booleans()
    ),
    st.sampled_from(TAGS).map(HasTag),
)
# Events weigh as much as everything else: their windows and spans hold the subtle edges.
_condition_leaf = st.one_of(_events, _profile_conditions)
conditions = st.recursive(
    _condition_leaf,
    lambda inner: st.one_of(
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=5,
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with open_backend(Settings(home=tmp_path_factory.mktemp("segments"))) as opened:
        yield opened


Dataset = tuple[list[dict[str, Any]], list[ReferenceEvent], dict[tuple[str, str], str | None]]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=conditions, data=datasets())
def test_duckdb_agrees_with_the_reference(
    backend: Backend, expression: Expression, data: Dataset
) -> None:
    _assert_agreement(backend, expression, data)


_EDGE_PROFILE = {
    "customer_id": "c0",
    "orders": None,
    "spend": None,
    "channel": None,
    "last_seen_at": None,
    "birthday": None,
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=_events, data=datasets())
@example(  # an event exactly at the start of its window is outside it
    expression=DidEvent(EventSpec("buy", None, LastWindow(3, "days"))),
    data=([_EDGE_PROFILE], [ReferenceEvent("c0", "buy", NOW - timedelta(days=3))], {}),
)
@example(  # an event at the local midnight that starts a date window is inside it
    expression=DidEvent(EventSpec("buy", None, DateWindow(date(2025, 12, 31), None))),
    data=(
        [_EDGE_PROFILE],
        [ReferenceEvent("c0", "buy", datetime(2025, 12, 30, 16, tzinfo=UTC))],
        {},
    ),
)
def test_event_predicates_agree_with_the_reference(
    backend: Backend, expression: Expression, data: Dataset
) -> None:
    _assert_agreement(backend, expression, data)


_sequences = st.builds(
    FollowedBy,
    _spec(st.none()),
    _spec(st.none()),
    st.builds(LastWindow, st.integers(1, 4), st.just("days")),
    st.booleans(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=_sequences, data=datasets(_whole_days))
def test_sequences_agree_with_the_reference_at_their_edges(
    backend: Backend, expression: Expression, data: Dataset
) -> None:
    """Events on whole days before now: one event often lies exactly at the span's end."""
    _assert_agreement(backend, expression, data)


def _assert_agreement(backend: Backend, expression: Expression, data: Dataset) -> None:
    profiles, events, tags = data
    check_expression(expression, Catalog(kinds_of_arrow_schema(FRAME_SCHEMA)), "")
    context = EvaluationContext(
        backend,
        backend.register_arrow("prop_frame", pa.Table.from_pylist(profiles, schema=FRAME_SCHEMA)),
        backend.register_arrow(
            "prop_events",
            pa.Table.from_pylist([event.__dict__ for event in events], schema=EVENT_SCHEMA),
        ),
        NOW,
        ZONE,
        tags=backend.register_arrow(
            "prop_tags",
            pa.Table.from_pylist(
                [{"customer_id": c, "tag": t, "value": v} for (c, t), v in tags.items()],
                schema=TAG_SCHEMA,
            ),
        ),
    )
    compiled = backend.to_pyarrow(compile_membership(expression, context)).to_pylist()
    engine = {row["customer_id"]: row["member"] for row in compiled}
    reference = evaluate_reference(
        expression,
        ReferenceData({row["customer_id"]: row for row in profiles}, events, NOW, ZONE, tags),
    )
    assert engine == reference, format_expression(expression)


@settings(max_examples=400, deadline=None)
@given(expression=conditions)
def test_canonical_text_parses_back_to_the_same_tree(expression: Expression) -> None:
    assert parse_expression(format_expression(expression)) == expression


@settings(max_examples=400, deadline=None)
@given(expression=conditions)
def test_the_json_form_reads_back_as_the_same_tree(expression: Expression) -> None:
    document = to_json(expression)
    assert from_json(json.loads(json.dumps(document))) == expression
