"""Compile a segment expression to one Ibis query: who is a member, on DuckDB or Spark.

The profile fields are columns of a frame with one row per customer. Each event
predicate becomes one aggregate over the events (a count per customer of the
events that match its type, property filter and window), each tag one lookup;
they are left-joined to the frame as hidden columns, and the condition is then
an ordinary boolean over that joined frame. User values reach the engine as
typed literals and property names as bound JSON paths, never as SQL text
(DESIGN rule 4). Semantics are pinned by the Python reference in
:mod:`perennial.segments.reference`:

- nulls follow SQL's three-valued logic; a customer is a member when the
  condition is true (null is not true);
- ``in last N days`` counts events after now minus the span. There is no upper
  bound: with a pinned clock (replaying old data) events after it still count;
- date windows are local calendar days in the default time zone, both ends included;
- an instant compared with a date is compared by its local calendar day;
- ``days_since(instant)`` is float days of 24 hours; ``days_since(date)`` whole
  days since today's local date.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_compiler import (
    COMPARISONS,
    balanced,
    compile_arithmetic,
    compile_call,
    number_literal,
)
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression, walk
from perennial.segments.references import inline_segments
from perennial.store.backends import Backend

__all__ = ["EvaluationContext", "compile_membership", "compile_memberships", "local_midnight"]

_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_UTC_TYPE = dt.Timestamp(timezone="UTC")


@dataclass(frozen=True)
class EvaluationContext:
    """What an expression is evaluated against.

    ``frame``: one row per customer, ``customer_id`` and the profile fields;
    ``events``: ``customer_id, event_type, ts, properties`` (JSON text);
    ``tags``: ``customer_id, tag, value`` with one row per customer and tag;
    ``segments``: saved definitions by name, for ``in_segment``.
    """

    backend: Backend
    frame: ir.Table
    events: ir.Table
    now: datetime
    timezone: str
    tags: ir.Table | None = None
    segments: Mapping[str, Expression] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.timezone)).date()


def local_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` starts in ``timezone``."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def compile_membership(expression: Expression, context: EvaluationContext) -> ir.Table:
    """``customer_id`` and ``member`` (true, false or null) for every row of the frame.

    ``in_segment`` references are replaced by the saved expressions they name
    (:class:`~perennial.segments.references.SegmentCycleError` on a cycle).
    """
    if context.now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    expanded = inline_segments(expression, context.segments)
    compiler = _Compiler(context)
    joined = compiler.join_inputs(expanded)
    return joined.select("customer_id", member=compiler.condition(expanded, joined))


def compile_memberships(
    expressions: Mapping[str, Expression], context: EvaluationContext
) -> tuple[ir.Table, dict[str, str]]:
    """Several segments in one query: ``customer_id`` and one boolean column per name.

    Event aggregates and tags that several expressions share are joined once. Returns
    the table and the column of each name (names need not be valid identifiers).
    """
    if context.now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    compiler = _Compiler(context)
    expanded = {name: inline_segments(e, context.segments) for name, e in expressions.items()}
    joined = compiler.join_all(list(expanded.values()))
    columns = {name: f"_member_{index}" for index, name in enumerate(expanded)}
    conditions = {
        columns[name]: compiler.condition(expression, joined)
        for name, expression in expanded.items()
    }
    return joined.select("customer_id", **conditions), columns


class _Compiler:
    def __init__(self, context: EvaluationContext) -> None:
        self._context = context
        self._backend = context.backend
        self._now = context.now.astimezone(UTC)
        self._now_literal = ibis.literal(self._now, type=_UTC_TYPE)
        self._now_us = int(
            (self._now - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)
        )
        self._event_columns: dict[nodes.DidEvent | nodes.FollowedBy, str] = {}
        self._tag_columns: dict[str, tuple[str, str]] = {}

    # -- joins ----------------------------------------------------------------------

    def join_inputs(self, expression: Expression) -> ir.Table:
        return self.join_all([expression])

    def join_all(self, expressions: Sequence[Expression]) -> ir.Table:
        """The frame with a column per event predicate and tag of ``expressions``.

        Plain event counts (any window but ``since``) share one pass over the events:
        one group-by with a conditional count per predicate, joined once; sequences and
        ``since`` windows get a join each.
        """
        joined = self._context.frame
        plain: dict[nodes.DidEvent, str] = {}
        for node in (found for e in expressions for found, _ in walk(e)):
            if isinstance(node, nodes.DidEvent | nodes.FollowedBy):
                if node in self._event_columns:
                    continue
                name = f"_event_{len(self._event_columns)}"
                self._event_columns[node] = name
                if isinstance(node, nodes.DidEvent) and not isinstance(
                    node.spec.window, nodes.SinceEvent
                ):
                    plain[node] = name
                else:
                    joined = self._join_count(joined, self._event_counts(node), name)
            elif isinstance(node, nodes.HasTag | nodes.TagValue):
                if node.name not in self._tag_columns:
                    joined = self._join_tag(joined, node.name)
        if plain:
            joined = self._join_plain_counts(joined, plain)
        return joined

    def _join_plain_counts(self, joined: ir.Table, plain: dict[nodes.DidEvent, str]) -> ir.Table:
        events = self._context.events
        types = sorted({node.spec.event_type for node in plain})
        relevant = events.filter(
            events.event_type.isin([ibis.literal(t, type="string") for t in types])
        )
        earliest = self._earliest_start(list(plain))
        if earliest is not None:  # every predicate has a window: skip older events early
            relevant = relevant.filter(relevant.ts >= ibis.literal(earliest, type=_UTC_TYPE))
        counts = relevant.group_by(_count_customer=relevant.customer_id).aggregate(
            **{
                name: self._spec_condition(node.spec, relevant).ifelse(1, 0).sum().cast(dt.int64)
                for node, name in plain.items()
            }
        )
        result = joined.left_join(counts, joined.customer_id == counts._count_customer)
        return result.drop("_count_customer")

    def _earliest_start(self, counted: list[nodes.DidEvent]) -> datetime | None:
        """The earliest instant any of these predicates counts from, if all have one."""
        starts = []
        for node in counted:
            window = node.spec.window
            if isinstance(window, nodes.LastWindow):
                starts.append(self._now - timedelta(microseconds=_span_us(window)))
            elif isinstance(window, nodes.DateWindow) and window.start is not None:
                starts.append(local_midnight(window.start, self._context.timezone))
            else:
                return None
        return min(starts) if starts else None

    def _spec_condition(self, spec: nodes.EventSpec, events: ir.Table) -> ir.BooleanValue:
        """True for the events ``spec`` counts (its window must not be ``since``)."""
        condition = events.event_type == ibis.literal(spec.event_type, type="string")
        if spec.where is not None:
            condition = condition & self._property(spec.where, events).fill_null(False)
        window = spec.window
        if isinstance(window, nodes.LastWindow):
            start = self._now - timedelta(microseconds=_span_us(window))
            condition = condition & (events.ts > ibis.literal(start, type=_UTC_TYPE))
        elif isinstance(window, nodes.DateWindow):
            zone = self._context.timezone
            if window.start is not None:
                start = local_midnight(window.start, zone)
                condition = condition & (events.ts >= ibis.literal(start, type=_UTC_TYPE))
            if window.end is not None:
                end = local_midnight(window.end + timedelta(days=1), zone)
                condition = condition & (events.ts < ibis.literal(end, type=_UTC_TYPE))
        return condition

    def _join_count(self, joined: ir.Table, counts: ir.Table, name: str) -> ir.Table:
        counts = counts.select(_count_customer=counts.customer_id, **{name: counts._n})
        result = joined.left_join(counts, joined.customer_id == counts._count_customer)
        return result.drop("_count_customer")

    def _join_tag(self, joined: ir.Table, tag: str) -> ir.Table:
        index = len(self._tag_columns)
        value_column, present_column = f"_tag_value_{index}", f"_tag_present_{index}"
        self._tag_columns[tag] = (value_column, present_column)
        tags = self._context.tags
        if tags is None:
            return joined.mutate(
                **{
                    value_column: ibis.null(dt.string),
                    present_column: ibis.literal(False),
                }
            )
        one = tags.filter(tags.tag == ibis.literal(tag, type="string")).select(
            _tag_customer=tags.customer_id,
            **{value_column: tags.value, present_column: ibis.literal(True)},
        )
        result = joined.left_join(one, joined.customer_id == one._tag_customer)
        return result.drop("_tag_customer")

    # -- events ---------------------------------------------------------------------

    def _event_counts(self, node: nodes.DidEvent | nodes.FollowedBy) -> ir.Table:
        if isinstance(node, nodes.DidEvent):
            matching = self._matching(node.spec)
            return matching.group_by("customer_id").aggregate(_n=matching.count())
        first = self._matching(node.first)
        firsts = first.select("customer_id", _a_us=self._backend.epoch_microseconds(first.ts))
        firsts = firsts.distinct()
        then = self._matching(node.then)
        thens = then.select(
            _b_customer=then.customer_id, _b_us=self._backend.epoch_microseconds(then.ts)
        )
        span = _span_us(node.within)
        pairs = firsts.left_join(
            thens,
            [
                firsts.customer_id == thens._b_customer,
                thens._b_us > firsts._a_us,
                thens._b_us <= firsts._a_us + span,
            ],
        )
        per_first = pairs.group_by(["customer_id", "_a_us"]).aggregate(_hits=pairs._b_us.count())
        hit = per_first._hits == 0 if node.negated else per_first._hits >= 1
        return per_first.group_by("customer_id").aggregate(_n=hit.ifelse(1, 0).sum().cast(dt.int64))

    def _matching(self, spec: nodes.EventSpec) -> ir.Table:
        events = self._context.events
        matching = events.filter(events.event_type == ibis.literal(spec.event_type, type="string"))
        if spec.where is not None:
            matching = matching.filter(self._property(spec.where, matching))
        window = spec.window
        if isinstance(window, nodes.LastWindow):
            start = self._now - timedelta(microseconds=_span_us(window))
            matching = matching.filter(matching.ts > ibis.literal(start, type=_UTC_TYPE))
        elif isinstance(window, nodes.DateWindow):
            zone = self._context.timezone
            if window.start is not None:
                start = local_midnight(window.start, zone)
                matching = matching.filter(matching.ts >= ibis.literal(start, type=_UTC_TYPE))
            if window.end is not None:
                end = local_midnight(window.end + timedelta(days=1), zone)
                matching = matching.filter(matching.ts < ibis.literal(end, type=_UTC_TYPE))
        elif isinstance(window, nodes.SinceEvent):
            anchors = events.filter(
                events.event_type == ibis.literal(window.event_type, type="string")
            )
            latest = anchors.group_by("customer_id").aggregate(_since=anchors.ts.max())
            latest = latest.select(_since_customer=latest.customer_id, _since=latest._since)
            joined = matching.join(latest, matching.customer_id == latest._since_customer)
            matching = joined.filter(joined.ts > joined._since).select(*events.columns)
        return matching

    def _property(self, node: Expression, events: ir.Table) -> ir.BooleanValue:
        match node:
            case rule.And(operands):
                return balanced(operator.and_, [self._property(o, events) for o in operands])
            case rule.Or(operands):
                return balanced(operator.or_, [self._property(o, events) for o in operands])
            case rule.Not(operand):
                return ~self._property(operand, events)
            case rule.Comparison(symbol, rule.Feature(name), literal):
                value = self._property_value(events, name, literal)  # type: ignore[arg-type]
                return COMPARISONS[symbol](value, _literal(literal))  # type: ignore[arg-type]
            case rule.IsNull(rule.Feature(name), negated):
                text = self._backend.json_text(events.properties, name)
                return text.notnull() if negated else text.isnull()
            case rule.InList(rule.Feature(name), values, negated):
                value = self._property_value(events, name, values[0])
                inside = value.isin([_literal(v) for v in values])
                return ~inside if negated else inside
            case rule.Between(rule.Feature(name), lower, upper, negated):
                value = self._property_value(events, name, lower)  # type: ignore[arg-type]
                inside = value.between(_literal(lower), _literal(upper))  # type: ignore[arg-type]
                return ~inside if negated else inside
            case nodes.TextMatch(match, rule.Feature(name), pattern, negated):
                text = self._backend.json_text(events.properties, name)
                return _text_match(match, text, pattern, negated)
        raise TypeError(f"not a property condition: {node!r}")

    def _property_value(
        self, events: ir.Table, name: str, literal: rule.Number | rule.Text
    ) -> ir.Value:
        text = self._backend.json_text(events.properties, name)
        if isinstance(literal, rule.Number):
            return text.try_cast(dt.float64)
        return text

    # -- values and conditions --------------------------------------------------------

    def condition(self, expression: Expression, joined: ir.Table) -> ir.BooleanValue:
        value = self.value(expression, joined)
        if not isinstance(value, ir.BooleanValue):
            raise TypeError("the expression is not a condition")
        return value

    def value(self, node: Expression, table: ir.Table) -> ir.Value:
        match node:
            case rule.Number(number):
                return number_literal(number)
            case rule.Text(text):
                return ibis.literal(text, type="string")
            case rule.Feature(name):
                return table[name]
            case nodes.Now():
                return self._now_literal
            case nodes.DaysAgo(days):
                start = self._now - timedelta(microseconds=round(days * _DAY_US))
                return ibis.literal(start, type=_UTC_TYPE)
            case nodes.DateLiteral(day):
                return ibis.literal(day, type="date")
            case nodes.TimeFunction(function, argument):
                return self._time_function(function, self.value(argument, table))
            case _:
                return self._predicate_value(node, table)

    def _predicate_value(self, node: Expression, table: ir.Table) -> ir.Value:
        match node:
            case nodes.TextMatch(match, operand, pattern, negated):
                return _text_match(match, self.value(operand, table), pattern, negated)
            case nodes.HasTag(name):
                return table[self._tag_columns[name][1]].fill_null(False)
            case nodes.TagValue(name):
                return table[self._tag_columns[name][0]]
            case nodes.InSegment():
                raise TypeError("segment references are inlined before compiling")
            case nodes.DidEvent(_, count, negated):
                counted = table[self._event_columns[node]].fill_null(0)
                bound = count or nodes.CountBound(">=", 1)
                holds = COMPARISONS[bound.operator](counted, bound.times)
                return ~holds if negated else holds
            case nodes.FollowedBy():
                return table[self._event_columns[node]].fill_null(0) >= 1
            case _:
                return self._rule_value(node, table)

    def _rule_value(self, node: Expression, table: ir.Table) -> ir.Value:
        match node:
            case rule.Negate(operand):
                return -self.value(operand, table).cast(dt.float64)
            case rule.Arithmetic(symbol, left, right):
                return compile_arithmetic(symbol, self.value(left, table), self.value(right, table))
            case rule.Call(function, arguments):
                return compile_call(function, [self.value(a, table) for a in arguments])
            case rule.And(operands):
                return balanced(operator.and_, [self.value(o, table) for o in operands])
            case rule.Or(operands):
                return balanced(operator.or_, [self.value(o, table) for o in operands])
            case rule.Not(operand):
                return ~self.value(operand, table)
        return self._comparison_value(node, table)

    def _comparison_value(self, node: Expression, table: ir.Table) -> ir.Value:
        match node:
            case rule.Comparison(symbol, left, right):
                lhs, rhs = self._comparable(self.value(left, table), self.value(right, table))
                return COMPARISONS[symbol](lhs, rhs)
            case rule.IsNull(operand, negated):
                value = self.value(operand, table)
                return value.notnull() if negated else value.isnull()
            case rule.InList(operand, values, negated):
                value = self.value(operand, table)
                inside = value.isin([self.value(item, table) for item in values])
                return ~inside if negated else inside
            case rule.Between(operand, lower, upper, negated):
                value = self.value(operand, table)
                low, value_low = self._comparable(self.value(lower, table), value)
                value_high, high = self._comparable(value, self.value(upper, table))
                inside = (low <= value_low) & (value_high <= high)
                return ~inside if negated else inside
        raise TypeError(f"not an expression node: {node!r}")

    def _comparable(self, left: ir.Value, right: ir.Value) -> tuple[ir.Value, ir.Value]:
        """An instant against a date: the instant's local calendar day."""
        if left.type().is_timestamp() and right.type().is_date():
            return self._local_day(left), right
        if left.type().is_date() and right.type().is_timestamp():
            return left, self._local_day(right)
        return left, right

    def _local_day(self, instant: ir.TimestampValue) -> ir.DateValue:
        return self._backend.local_wall_clock(instant, self._context.timezone).date()

    def _time_function(self, function: nodes.TimeFunctionName, value: ir.Value) -> ir.Value:
        today = ibis.literal(self._context.today, type="date")
        if function == "days_to_anniversary":
            return self._days_to_anniversary(
                value if value.type().is_date() else self._local_day(value)
            )
        if value.type().is_date():
            since = self._backend.days_between(today, value).cast(dt.float64)
        else:
            since = (self._now_us - self._backend.epoch_microseconds(value)).cast(
                dt.float64
            ) / _DAY_US
        return since if function == "days_since" else -since

    def _days_to_anniversary(self, day: ir.DateValue) -> ir.Value:
        today = self._context.today
        today_literal = ibis.literal(today, type="date")
        month, dom = day.month(), day.day()
        this_year = self._anniversary_in(today.year, month, dom)
        next_year = self._anniversary_in(today.year + 1, month, dom)
        upcoming = (this_year >= today_literal).ifelse(this_year, next_year)
        return self._backend.days_between(upcoming, today_literal).cast(dt.float64)

    @staticmethod
    def _anniversary_in(year: int, month: ir.IntegerValue, dom: ir.IntegerValue) -> ir.DateValue:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        day = dom if leap else ((month == 2) & (dom == 29)).ifelse(28, dom)
        return ibis.date(ibis.literal(year, type="int32"), month.cast("int32"), day.cast("int32"))


def _text_match(
    match: nodes.MatchOperator, text: ir.StringValue, pattern: str, negated: bool
) -> ir.BooleanValue:
    literal = ibis.literal(pattern, type="string")
    found = text.contains(literal) if match == "contains" else text.startswith(literal)
    return ~found if negated else found


def _span_us(window: nodes.LastWindow) -> int:
    return window.amount * (_DAY_US if window.unit == "days" else _HOUR_US)


def _literal(node: rule.Number | rule.Text) -> ir.Value:
    if isinstance(node, rule.Number):
        return ibis.literal(float(node.value), type="float64")
    return ibis.literal(node.value, type="string")
