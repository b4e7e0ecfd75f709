"""The JSON form of a segment expression: what the segment builder edits.

People write the text form; the builder page edits this one, a list of
conditions the page can draw as rows. Both map to the same tree, so a segment
saved from either reads back in both. The shapes::

    {"all": [c, ...]}   {"any": [c, ...]}   {"not": c}
    {"field": "recency_days", "op": ">", "value": 45}
    {"field": "first_order_at", "function": "days_since", "op": ">", "value": 90}
    {"field": "stage", "op": "in", "values": ["dormant", "churned"]}      (also "not_in")
    {"field": "monetary_total", "op": "between", "values": [100, 500]}
    {"field": "email", "op": "is_null"}                                  (also "is_not_null")
    {"field": "region", "op": "contains", "value": "上海"}               (also "starts_with")
    {"field": "first_order_at", "op": "<", "value": {"days_ago": 90}}    ({"date": "2025-11-11"})
    {"event": "login", "did": false, "where": [{"property": "os", "op": "==", "value": "ios"}],
     "count": {"op": ">=", "times": 3}, "window": {"last": 30, "unit": "days"}}
        window: {"last": N, "unit": "days"|"hours"}, {"from": D, "to": D}, {"since_event": T}
    {"event": "course_purchased", "followed_by": {"event": "lesson_completed"},
     "within": {"last": 30, "unit": "days"}, "negated": true}
    {"tag": "vip"}   {"tag": "favourite_category", "op": "==", "value": "books"}
    {"segment": "dormant_learners"}
    {"expression": "days_to_anniversary(birthday) <= 6"}    (any text form, as is)

A JSON mistake is a :class:`ConfigError` naming the path of the offending key
(``all[1].value``); the text it becomes is then checked like typed text.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from perennial.errors import ConfigError
from perennial.lifecycle import rule_ast as rule
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression, format_expression
from perennial.segments.parser import parse_expression

__all__ = ["from_json", "to_json"]

_SOURCE = "expression_json"
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_KEYS = ("all", "any", "not", "field", "event", "tag", "segment", "expression")


# -- JSON -> tree -------------------------------------------------------------------


def from_json(document: Any) -> Expression:
    """The tree of a JSON-form expression; raises :class:`ConfigError` with the key path."""
    return _node(document, "")


_MAX_DEPTH = 32


def _node(document: Any, path: str) -> Expression:
    if path.count("all") + path.count("any") + path.count("not") > _MAX_DEPTH:
        raise _error(path, f"conditions nest more than {_MAX_DEPTH} deep")
    if not isinstance(document, dict):
        raise _error(path, "a condition is a JSON object")
    kinds = [key for key in _KEYS if key in document]
    if len(kinds) != 1:
        raise _error(path, f"a condition has exactly one of {', '.join(_KEYS)}")
    return _shaped(document, kinds[0], path)


def _shaped(document: dict[str, Any], kind: str, path: str) -> Expression:
    if kind in ("all", "any"):
        items = document[kind]
        if not isinstance(items, list) or not items:
            raise _error(_join(path, kind), "a non-empty list of conditions")
        operands = tuple(_node(item, f"{_join(path, kind)}[{i}]") for i, item in enumerate(items))
        if len(operands) == 1:
            return operands[0]
        return rule.And(operands) if kind == "all" else rule.Or(operands)  # type: ignore[arg-type]
    if kind == "not":
        return rule.Not(_node(document["not"], _join(path, "not")))  # type: ignore[arg-type]
    if kind == "expression":
        text = document["expression"]
        if not isinstance(text, str):
            raise _error(_join(path, "expression"), "expression text is a string")
        return parse_expression(text)
    if kind == "segment":
        return nodes.InSegment(_string(document, "segment", path))
    if kind == "tag":
        return _tag(document, path)
    if kind == "event":
        return _event(document, path)
    return _field(document, path)


def _field(document: dict[str, Any], path: str) -> Expression:
    operand: Expression = rule.Feature(_string(document, "field", path))
    function = document.get("function")
    if function is not None:
        if function not in nodes.TIME_FUNCTIONS:
            choices = ", ".join(nodes.TIME_FUNCTIONS)
            raise _error(_join(path, "function"), f"one of {choices}")
        operand = nodes.TimeFunction(function, operand)
    return _condition(operand, document, path)


def _tag(document: dict[str, Any], path: str) -> Expression:
    name = _string(document, "tag", path)
    if "op" not in document:
        return nodes.HasTag(name)
    return _condition(nodes.TagValue(name), document, path)


def _condition(operand: Expression, document: dict[str, Any], path: str) -> Expression:
    op = document.get("op")
    if op in _COMPARISONS:
        value = _value(document.get("value"), _join(path, "value"))
        return rule.Comparison(op, operand, value)  # type: ignore[arg-type]
    if op in ("is_null", "is_not_null"):
        return rule.IsNull(operand, op == "is_not_null")  # type: ignore[arg-type]
    if op in ("in", "not_in"):
        values = _values(document, path, minimum=1)
        literals = tuple(_literal(v, f"{_join(path, 'values')}[{i}]") for i, v in enumerate(values))
        return rule.InList(operand, literals, op == "not_in")  # type: ignore[arg-type]
    if op in ("between", "not_between"):
        low, high = _values(document, path, minimum=2, maximum=2)
        where = _join(path, "values")
        lower, upper = _value(low, f"{where}[0]"), _value(high, f"{where}[1]")
        return rule.Between(operand, lower, upper, op == "not_between")  # type: ignore[arg-type]
    if op in ("contains", "starts_with", "not_contains", "not_starts_with"):
        pattern = document.get("value")
        if not isinstance(pattern, str):
            raise _error(_join(path, "value"), f"'{op}' takes a string")
        match = cast(nodes.MatchOperator, op.removeprefix("not_"))
        return nodes.TextMatch(match, operand, pattern, op.startswith("not_"))
    raise _error(_join(path, "op"), f"unknown operator {op!r}")


def _values(
    document: dict[str, Any], path: str, *, minimum: int, maximum: int | None = None
) -> list[Any]:
    values = document.get("values")
    if not isinstance(values, list) or len(values) < minimum or (maximum and len(values) > maximum):
        count = f"exactly {minimum}" if maximum == minimum else f"at least {minimum}"
        raise _error(_join(path, "values"), f"a list of {count} values")
    return values


def _value(value: Any, path: str) -> Expression:
    if isinstance(value, dict):
        if (
            set(value) == {"days_ago"}
            and isinstance(value["days_ago"], int | float)
            and not isinstance(value["days_ago"], bool)
        ):
            return nodes.DaysAgo(value["days_ago"])
        if set(value) == {"date"}:
            return nodes.DateLiteral(_date(value["date"], _join(path, "date")))
        raise _error(path, 'a value object is {"days_ago": N} or {"date": "YYYY-MM-DD"}')
    return _literal(value, path)


def _literal(value: Any, path: str) -> rule.Number | rule.Text:
    if isinstance(value, bool) or value is None:
        raise _error(path, "a number or a string")
    if isinstance(value, int | float):
        return rule.Number(value)
    if isinstance(value, str):
        return rule.Text(value)
    raise _error(path, "a number or a string")


def _event(document: dict[str, Any], path: str) -> Expression:
    first = _spec(document, path, with_window=True)
    if "followed_by" in document:
        then_document = document["followed_by"]
        if not isinstance(then_document, dict):
            raise _error(_join(path, "followed_by"), "an event object")
        then = _spec(then_document, _join(path, "followed_by"), with_window=False)
        within = _window(document.get("within"), _join(path, "within"))
        if not isinstance(within, nodes.LastWindow):
            raise _error(_join(path, "within"), '{"last": N, "unit": "days"}')
        return nodes.FollowedBy(first, then, within, bool(document.get("negated", False)))
    count = None
    if "count" in document:
        count = _count(document["count"], _join(path, "count"))
    did = document.get("did", True)
    if not isinstance(did, bool):
        raise _error(_join(path, "did"), "true or false")
    return nodes.DidEvent(first, count, not did)


def _spec(document: dict[str, Any], path: str, *, with_window: bool) -> nodes.EventSpec:
    event_type = _string(document, "event", path)
    where: Expression | None = None
    filters = document.get("where")
    if filters:
        if not isinstance(filters, list):
            raise _error(_join(path, "where"), "a list of property conditions")
        tests = [_property(item, f"{_join(path, 'where')}[{i}]") for i, item in enumerate(filters)]
        where = tests[0] if len(tests) == 1 else rule.And(tuple(tests))  # type: ignore[arg-type]
    window = _window(document.get("window"), _join(path, "window")) if with_window else None
    return nodes.EventSpec(event_type, where, window)


def _property(document: Any, path: str) -> Expression:
    if not isinstance(document, dict):
        raise _error(path, "a property condition is a JSON object")
    name = _string(document, "property", path)
    if not name.isidentifier():
        raise _error(_join(path, "property"), "a property name is letters, digits and '_'")
    return _condition(rule.Feature(name), document, path)


def _count(document: Any, path: str) -> nodes.CountBound:
    if not isinstance(document, dict) or document.get("op") not in (">=", "<=", "=="):
        raise _error(path, '{"op": ">=" | "<=" | "==", "times": N}')
    times = document.get("times")
    if not isinstance(times, int) or isinstance(times, bool) or times < 0:
        raise _error(_join(path, "times"), "a whole number of times")
    return nodes.CountBound(document["op"], times)


def _window(document: Any, path: str) -> nodes.Window | None:
    if document is None:
        return None
    if not isinstance(document, dict):
        raise _error(path, "a window object")
    if "last" in document:
        amount, unit = document["last"], document.get("unit", "days")
        if not isinstance(amount, int) or isinstance(amount, bool) or unit not in ("days", "hours"):
            raise _error(path, '{"last": N, "unit": "days" | "hours"}')
        return nodes.LastWindow(amount, unit)
    if "since_event" in document:
        return nodes.SinceEvent(_string(document, "since_event", path))
    start = _date(document["from"], _join(path, "from")) if document.get("from") else None
    end = _date(document["to"], _join(path, "to")) if document.get("to") else None
    if start is None and end is None:
        raise _error(path, 'a window has "last", "since_event", or "from" and/or "to"')
    return nodes.DateWindow(start, end)


def _date(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _error(path, "a date written YYYY-MM-DD") from None


def _string(document: dict[str, Any], key: str, path: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise _error(_join(path, key), "a non-empty string")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _error(path: str, reason: str) -> ConfigError:
    return ConfigError(_SOURCE, path or "(root)", reason)


# -- tree -> JSON -------------------------------------------------------------------


def to_json(expression: Expression) -> dict[str, Any]:
    """The JSON form; what the builder cannot draw becomes an ``expression`` fragment."""
    try:
        drawn = _drawn(expression)
    except _NotDrawable:
        drawn = None
    return drawn if drawn is not None else {"expression": format_expression(expression)}


def _drawn(expression: Expression) -> dict[str, Any] | None:
    match expression:
        case rule.And(operands) | rule.Or(operands):
            key = "all" if isinstance(expression, rule.And) else "any"
            return {key: [to_json(operand) for operand in operands]}
        case rule.Not(operand):
            return {"not": to_json(operand)}
        case nodes.InSegment(name):
            return {"segment": name}
        case nodes.HasTag(name):
            return {"tag": name}
        case nodes.DidEvent(spec, count, negated):
            document = _spec_json(spec, with_window=True)
            document["did"] = not negated
            if count is not None:
                document["count"] = {"op": count.operator, "times": count.times}
            return document
        case nodes.FollowedBy(first, then, within, negated):
            document = _spec_json(first, with_window=True)
            document["followed_by"] = _spec_json(then, with_window=False)
            document["within"] = {"last": within.amount, "unit": within.unit}
            document["negated"] = negated
            return document
    return _condition_json(expression)


def _subject(operand: Expression) -> dict[str, Any] | None:
    match operand:
        case rule.Feature(name):
            return {"field": name}
        case nodes.TimeFunction(function, rule.Feature(name)):
            return {"field": name, "function": function}
        case nodes.TagValue(name):
            return {"tag": name}
    return None


def _condition_json(expression: Expression) -> dict[str, Any] | None:
    match expression:
        case rule.Comparison(operator, left, right):
            subject, value = _subject(left), _value_json(right)
            if subject is None or value is None:
                return None
            return {**subject, "op": operator, "value": value}
        case rule.IsNull(operand, negated):
            subject = _subject(operand)
            return (
                None
                if subject is None
                else {**subject, "op": "is_not_null" if negated else "is_null"}
            )
        case rule.InList(operand, values, negated):
            subject = _subject(operand)
            listed = [value.value for value in values]
            return (
                None
                if subject is None
                else {**subject, "op": "not_in" if negated else "in", "values": listed}
            )
        case rule.Between(operand, lower, upper, negated):
            subject, low, high = _subject(operand), _value_json(lower), _value_json(upper)
            if subject is None or low is None or high is None:
                return None
            return {**subject, "op": "not_between" if negated else "between", "values": [low, high]}
        case nodes.TextMatch(match, operand, pattern, negated):
            subject = _subject(operand)
            op = ("not_" if negated else "") + match
            return None if subject is None else {**subject, "op": op, "value": pattern}
    return None


def _value_json(value: Expression) -> Any:
    match value:
        case rule.Number(number) | rule.Text(number):
            return number
        case nodes.DaysAgo(days):
            return {"days_ago": days}
        case nodes.DateLiteral(day):
            return {"date": day.isoformat()}
    return None


def _spec_json(spec: nodes.EventSpec, *, with_window: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"event": spec.event_type}
    if spec.where is not None:
        tests = spec.where.operands if isinstance(spec.where, rule.And) else (spec.where,)
        drawn = [_property_json(test) for test in tests]
        if all(item is not None for item in drawn):
            document["where"] = drawn
        else:
            raise _NotDrawable
    if with_window and spec.window is not None:
        document["window"] = _window_json(spec.window)
    return document


class _NotDrawable(Exception):
    """An event filter the builder's rows cannot show (``or``, ``not`` inside ``where``)."""


def _property_json(test: Expression) -> dict[str, Any] | None:
    drawn = _condition_json(test)
    if drawn is None or "field" not in drawn:
        return None
    return {"property": drawn.pop("field"), **drawn}


def _window_json(window: nodes.Window) -> dict[str, Any]:
    match window:
        case nodes.LastWindow(amount, unit):
            return {"last": amount, "unit": unit}
        case nodes.SinceEvent(event_type):
            return {"since_event": event_type}
        case nodes.DateWindow(start, end):
            document: dict[str, Any] = {}
            if start is not None:
                document["from"] = start.isoformat()
            if end is not None:
                document["to"] = end.isoformat()
            return document
