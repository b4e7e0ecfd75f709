"""A recursive-descent parser for segment expressions, from the rule tokens to a typed tree.

It reads the lifecycle rule language (same tokens, same precedence, same errors
pointing at the column) and adds event predicates, text matching, time and tag
functions (see :mod:`perennial.segments.ast`). The new words (``did``, ``where``,
``at least``, ``times``, ``last``, ``since``, ``followed by``, ``within``,
``contains``, ``starts with``) are keywords only where they can appear, so a
profile field may still be called ``times``; only ``did`` opens a predicate.

Grammar, lowest precedence first (words case-insensitive)::

    expression  = disjunction END
    disjunction = conjunction ("or" conjunction)*
    conjunction = negation ("and" negation)*
    negation    = "not" negation | "did" event | predicate
    predicate   = sum [ COMPARISON sum | "is" ["not"] "null"
                      | ["not"] "in" "(" literal ("," literal)* ")"
                      | ["not"] "between" sum "and" sum
                      | ["not"] ("contains" | "starts" "with") STRING ]
    event       = ["not"] spec [count] [window] [count]
                | spec [window] ["not"] "followed" "by" spec "within" NUMBER unit
    spec        = (NAME | STRING) ["where" property_condition]
    count       = ("at" "least" | "at" "most" | "exactly") NUMBER ("time" | "times")
    window      = "in" "last" NUMBER unit | "between" DATE "and" DATE
                | "since" (DATE | NAME | STRING) | "before" DATE
    unit        = "day" | "days" | "hour" | "hours"
    property_condition = property_test | "(" a disjunction of property tests ")"
    property_test = NAME (COMPARISON literal | "is" ["not"] "null" | ["not"] "in" (...)
                         | ["not"] "between" literal "and" literal
                         | ["not"] ("contains" | "starts" "with") STRING)
    sum, product, unary, primary: as in rules; primary also takes the calls
        now() days_ago(N) date('YYYY-MM-DD') days_since(x) days_until(x)
        days_to_anniversary(x) has_tag('t') tag('t') in_segment('s')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import cast

from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_ast import FUNCTIONS
from perennial.lifecycle.rule_errors import ParseError, did_you_mean
from perennial.lifecycle.rule_lexer import Token, TokenKind, describe, tokenize
from perennial.segments import ast as nodes
from perennial.segments.ast import TIME_FUNCTIONS, Expression, walk

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_NESTING",
    "MAX_WINDOW_DAYS",
    "parse_expression",
    "parse_property_filter",
]

MAX_NESTING = 32
MAX_DEPTH = 64
MAX_WINDOW_DAYS = 3660
"""Ten years: a longer window is surely a typo (write no window for "ever")."""
MAX_COUNT = 1_000_000

_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_UNITS = {"day": "days", "days": "days", "hour": "hours", "hours": "hours"}
_NAMED_CALLS: dict[str, type[nodes.HasTag | nodes.TagValue | nodes.InSegment]] = {
    "has_tag": nodes.HasTag,
    "tag": nodes.TagValue,
    "in_segment": nodes.InSegment,
}
_ALL_CALLS = (*FUNCTIONS, *TIME_FUNCTIONS, "now", "days_ago", "date", *_NAMED_CALLS)


def parse_expression(text: str) -> Expression:
    """Parse ``text`` into a tree; raises :class:`ParseError` pointing at the column.

    Names are not checked here: :func:`perennial.segments.kinds.check_expression`
    checks fields, event types, tags and segments against a catalog.
    """
    return _Parser(text).parse()


def parse_property_filter(text: str) -> Expression:
    """Parse the condition on one event's properties (what follows ``where`` in an event
    predicate), e.g. ``category = 'baby' and amount > 100``; journeys' event triggers and
    waits filter with it."""
    return _Parser(text).parse_property_filter()


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = tokenize(text)
        self._index = 0
        self._nesting = 0

    def parse(self) -> Expression:
        if self._peek().kind is TokenKind.END:
            raise ParseError("an expression cannot be empty", self._text, 0)
        expression = self._disjunction()
        token = self._peek()
        if token.is_punctuation(")"):
            raise self._error("this ')' closes nothing", token, found=None)
        if token.kind is not TokenKind.END:
            raise self._error(
                "expected an operator, 'and', 'or' or the end of the expression", token
            )
        if max(level for _, level in walk(expression)) > MAX_DEPTH:
            raise ParseError(f"the expression is more than {MAX_DEPTH} levels deep", self._text, 0)
        return expression

    def parse_property_filter(self) -> Expression:
        if self._peek().kind is TokenKind.END:
            raise ParseError("a property filter cannot be empty", self._text, 0)
        condition = self._property_disjunction()
        token = self._peek()
        if token.kind is not TokenKind.END:
            raise self._error("expected 'and', 'or' or the end of the filter", token)
        return condition

    # -- conditions ---------------------------------------------------------------

    def _disjunction(self) -> Expression:
        return self._chain("or", self._conjunction)

    def _conjunction(self) -> Expression:
        return self._chain("and", self._negation)

    def _chain(self, word: str, operand: Callable[[], Expression]) -> Expression:
        operands = [operand()]
        while self._peek().is_keyword(word):
            self._advance()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        node = rule.Or if word == "or" else rule.And
        return node(tuple(operands), position=operands[0].position)  # type: ignore[arg-type]

    def _negation(self) -> Expression:
        token = self._peek()
        if self._is_word(token, "did"):
            self._advance()
            return self._event(token)
        if not token.is_keyword("not"):
            return self._predicate()
        self._advance()
        with self._nested(token):
            return rule.Not(self._negation(), position=token.position)  # type: ignore[arg-type]

    def _predicate(self) -> Expression:
        left = self._sum()
        token = self._peek()
        if token.is_operator(*_COMPARISONS):
            self._advance()
            operator = cast(rule.ComparisonOperator, token.text)
            comparison = rule.Comparison(operator, left, self._sum(), position=left.position)  # type: ignore[arg-type]
            if self._peek().is_operator(*_COMPARISONS):
                reason = "comparisons cannot be chained; join them with 'and' (a < b and b < c)"
                raise self._error(reason, self._peek(), found=None)
            return comparison
        if token.is_keyword("is"):
            self._advance()
            negated = self._accept_keyword("not")
            self._expect_keyword("null", "expected 'null' or 'not null' after 'is'")
            return rule.IsNull(left, negated, position=left.position)  # type: ignore[arg-type]
        negated = token.is_keyword("not")
        if negated:
            self._advance()
            following = self._peek()
            if not (following.is_keyword("in", "between") or self._is_match_word(following)):
                reason = "expected 'in', 'between', 'contains' or 'starts with' after 'not'"
                raise self._error(reason, following)
        if self._accept_keyword("in"):
            values = self._in_list()
            return rule.InList(left, values, negated, position=left.position)  # type: ignore[arg-type]
        if self._accept_keyword("between"):
            lower = self._sum()
            self._expect_keyword("and", "expected 'and' between the two bounds of 'between'")
            upper = self._sum()
            return rule.Between(left, lower, upper, negated, position=left.position)  # type: ignore[arg-type]
        if self._is_match_word(self._peek()):
            match_operator, pattern = self._text_match()
            return nodes.TextMatch(match_operator, left, pattern, negated, position=left.position)
        return left

    def _is_match_word(self, token: Token) -> bool:
        if self._is_word(token, "contains"):
            return True
        following = self._tokens[min(self._index + 1, len(self._tokens) - 1)]
        return self._is_word(token, "starts") and self._is_word(following, "with")

    def _text_match(self) -> tuple[nodes.MatchOperator, str]:
        word = self._advance()
        operator: nodes.MatchOperator = "contains"
        if self._is_word(word, "starts"):
            self._advance()  # "with"
            operator = "starts_with"
        pattern = self._peek()
        if pattern.kind is not TokenKind.STRING:
            raise self._error(f"'{operator.replace('_', ' ')}' needs a quoted string", pattern)
        self._advance()
        return operator, cast(str, pattern.value)

    def _in_list(self) -> tuple[rule.Number | rule.Text, ...]:
        self._expect_punctuation("(", "expected '(' after 'in'")
        if self._peek().is_punctuation(")"):
            raise self._error("an 'in' list needs at least one value", self._peek(), found=None)
        values = [self._literal()]
        while self._peek().is_punctuation(","):
            self._advance()
            values.append(self._literal())
        self._expect_punctuation(")", "expected ',' or ')' in the 'in' list")
        return tuple(values)

    def _literal(self) -> rule.Number | rule.Text:
        token = self._peek()
        if token.kind is TokenKind.STRING:
            self._advance()
            return rule.Text(cast(str, token.value), position=token.position)
        negative = token.is_operator("-")
        if negative:
            self._advance()
        number = self._peek()
        if number.kind is not TokenKind.NUMBER:
            raise self._error("expected a number or a quoted string", number)
        self._advance()
        value = cast(int | float, number.value)
        return rule.Number(-value if negative else value, position=token.position)

    # -- events -------------------------------------------------------------------

    def _event(self, did: Token) -> Expression:
        negated = self._accept_keyword("not")
        spec = self._spec()
        count: nodes.CountBound | None = None
        window: nodes.Window | None = None
        while True:
            token = self._peek()
            if self._is_count_start(token):
                if count is not None:
                    raise self._error("this event already has a count", token, found=None)
                count = self._count()
            elif self._is_window_start(token):
                if window is not None:
                    raise self._error("this event already has a time window", token, found=None)
                window = self._window()
            elif self._is_followed_start(token):
                return self._followed_by(did, negated, spec, count, window)
            else:
                break
        spec = nodes.EventSpec(spec.event_type, spec.where, window, position=spec.position)
        return nodes.DidEvent(spec, count, negated, position=did.position)

    def _followed_by(
        self,
        did: Token,
        negated: bool,
        first: nodes.EventSpec,
        count: nodes.CountBound | None,
        window: nodes.Window | None,
    ) -> nodes.FollowedBy:
        token = self._peek()
        if negated:
            reason = "write 'not (did A followed by B within N days)' to negate a sequence"
            raise self._error(reason, token, found=None)
        if count is not None:
            reason = "a sequence takes no count; count the second event inside a segment of its own"
            raise self._error(reason, token, found=None)
        followed_negated = self._accept_keyword("not")
        self._advance()  # "followed"
        self._expect_word("by", "expected 'by' after 'followed'")
        then = self._spec()
        if not self._is_word(self._peek(), "within"):
            raise self._error("expected 'within N days' after the second event", self._peek())
        within_token = self._advance()
        amount, unit = self._span()
        first = nodes.EventSpec(first.event_type, first.where, window, position=first.position)
        within = nodes.LastWindow(amount, unit, position=within_token.position)
        return nodes.FollowedBy(first, then, within, followed_negated, position=did.position)

    def _spec(self) -> nodes.EventSpec:
        token = self._peek()
        if token.kind is TokenKind.NAME:
            name = token.text
        elif token.kind is TokenKind.STRING:
            name = cast(str, token.value)
        else:
            raise self._error("expected an event type after 'did'", token)
        if not name:
            raise self._error("an event type cannot be empty", token, found=None)
        self._advance()
        where: Expression | None = None
        if self._is_word(self._peek(), "where"):
            self._advance()
            where = self._property_condition()
        return nodes.EventSpec(name, where, None, position=token.position)

    def _property_condition(self) -> Expression:
        token = self._peek()
        if token.is_punctuation("("):
            self._advance()
            with self._nested(token):
                inner = self._property_disjunction()
            self._expect_punctuation(
                ")", f"expected ')' (the '(' at column {token.position + 1} is still open)"
            )
            return inner
        return self._property_test()

    def _property_disjunction(self) -> Expression:
        return self._chain("or", lambda: self._chain("and", self._property_negation))

    def _property_negation(self) -> Expression:
        token = self._peek()
        if token.is_keyword("not"):
            self._advance()
            with self._nested(token):
                return rule.Not(self._property_negation(), position=token.position)  # type: ignore[arg-type]
        return self._property_condition()

    def _property_test(self) -> Expression:
        token = self._peek()
        if token.kind is not TokenKind.NAME:
            raise self._error(
                "expected an event property name (a filter compares properties with values, "
                "e.g. where course_id == 'CRS-101')",
                token,
            )
        self._advance()
        prop = rule.Feature(token.text, position=token.position)
        following = self._peek()
        if following.is_operator(*_COMPARISONS):
            self._advance()
            operator = cast(rule.ComparisonOperator, following.text)
            return rule.Comparison(operator, prop, self._literal(), position=token.position)
        if following.is_keyword("is"):
            self._advance()
            negated = self._accept_keyword("not")
            self._expect_keyword("null", "expected 'null' or 'not null' after 'is'")
            return rule.IsNull(prop, negated, position=token.position)
        negated = self._accept_keyword("not")
        if self._accept_keyword("in"):
            return rule.InList(prop, self._in_list(), negated, position=token.position)
        if self._accept_keyword("between"):
            lower = self._literal()
            self._expect_keyword("and", "expected 'and' between the two bounds of 'between'")
            return rule.Between(prop, lower, self._literal(), negated, position=token.position)
        if self._is_match_word(self._peek()):
            match_operator, pattern = self._text_match()
            return nodes.TextMatch(match_operator, prop, pattern, negated, position=token.position)
        raise self._error(
            "expected a comparison, 'is null', 'in', 'between', 'contains' or 'starts with' "
            "after the property",
            self._peek(),
        )

    def _is_count_start(self, token: Token) -> bool:
        following = self._tokens[min(self._index + 1, len(self._tokens) - 1)]
        at = self._is_word(token, "at") and self._is_word(following, "least", "most")
        return at or self._is_word(token, "exactly")

    def _count(self) -> nodes.CountBound:
        token = self._advance()
        operator: nodes.CountOperator = "=="
        if self._is_word(token, "at"):
            operator = ">=" if self._is_word(self._advance(), "least") else "<="
        number = self._peek()
        if number.kind is not TokenKind.NUMBER or not isinstance(number.value, int):
            raise self._error("expected a whole number of times", number)
        self._advance()
        times = number.value
        if times > MAX_COUNT:
            raise self._error(f"a count can be at most {MAX_COUNT:,}", number, found=None)
        if operator == ">=" and times == 0:
            raise self._error(
                "'at least 0 times' is always true; drop the count", number, found=None
            )
        self._expect_word("times", "expected 'times' after the count", also=("time",))
        return nodes.CountBound(operator, times, position=token.position)

    def _is_window_start(self, token: Token) -> bool:
        following = self._tokens[min(self._index + 1, len(self._tokens) - 1)]
        last = token.is_keyword("in") and self._is_word(following, "last")
        return last or token.is_keyword("between") or self._is_word(token, "since", "before")

    def _window(self) -> nodes.Window:
        token = self._advance()
        if token.is_keyword("in"):
            self._advance()  # "last"
            amount, unit = self._span()
            return nodes.LastWindow(amount, unit, position=token.position)
        if token.is_keyword("between"):
            start = self._date_string("a start date")
            self._expect_keyword("and", "expected 'and' between the two dates")
            end_token = self._peek()
            end = self._date_string("an end date")
            if end < start:
                raise self._error("the end date is before the start date", end_token, found=None)
            return nodes.DateWindow(start, end, position=token.position)
        if self._is_word(token, "before"):
            return nodes.DateWindow(None, self._date_string("a date"), position=token.position)
        following = self._peek()
        if following.kind is TokenKind.STRING and _looks_like_date(cast(str, following.value)):
            return nodes.DateWindow(self._date_string("a date"), None, position=token.position)
        if following.kind in (TokenKind.NAME, TokenKind.STRING):
            self._advance()
            name = following.text if following.kind is TokenKind.NAME else str(following.value)
            return nodes.SinceEvent(name, position=following.position)
        raise self._error(
            "expected a date ('2025-11-11') or an event type after 'since'", following
        )

    def _span(self) -> tuple[int, nodes.TimeUnit]:
        number = self._peek()
        if number.kind is not TokenKind.NUMBER or not isinstance(number.value, int):
            raise self._error("expected a whole number of days or hours", number)
        self._advance()
        unit_token = self._peek()
        unit = _UNITS.get(unit_token.text.lower()) if unit_token.kind is TokenKind.NAME else None
        if unit is None:
            raise self._error("expected 'days' or 'hours' (weeks: write 7 days)", unit_token)
        self._advance()
        amount = number.value
        days = amount if unit == "days" else amount / 24
        if amount <= 0:
            raise self._error("a time window must be longer than zero", number, found=None)
        if days > MAX_WINDOW_DAYS:
            reason = (
                f"a window of {amount} {unit} is longer than {MAX_WINDOW_DAYS} days; "
                "leave the window out to count every event"
            )
            raise self._error(reason, number, found=None)
        return amount, cast(nodes.TimeUnit, unit)

    def _date_string(self, what: str) -> date:
        token = self._peek()
        if token.kind is not TokenKind.STRING:
            raise self._error(f"expected {what} in quotes, e.g. '2025-11-11'", token)
        self._advance()
        return self._parse_date(token)

    def _parse_date(self, token: Token) -> date:
        text = cast(str, token.value)
        if not _looks_like_date(text):
            raise self._error("a date is written YYYY-MM-DD", token)
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise self._error(f"'{text}' is not a calendar date", token, found=None) from None

    # -- values -------------------------------------------------------------------

    def _sum(self) -> Expression:
        return self._arithmetic(("+", "-"), self._product)

    def _product(self) -> Expression:
        return self._arithmetic(("*", "/"), self._unary)

    def _arithmetic(
        self, symbols: tuple[str, ...], operand: Callable[[], Expression]
    ) -> Expression:
        left = operand()
        while (token := self._peek()).is_operator(*symbols):
            self._advance()
            symbol = cast(rule.ArithmeticOperator, token.text)
            left = rule.Arithmetic(symbol, left, operand(), position=left.position)  # type: ignore[arg-type]
        return left

    def _unary(self) -> Expression:
        token = self._peek()
        if not token.is_operator("-"):
            return self._primary()
        self._advance()
        number = self._peek()
        if number.kind is TokenKind.NUMBER:
            self._advance()
            return rule.Number(-cast(int | float, number.value), position=token.position)
        with self._nested(token):
            return rule.Negate(self._unary(), position=token.position)  # type: ignore[arg-type]

    def _primary(self) -> Expression:
        token = self._peek()
        if token.kind is TokenKind.NUMBER:
            self._advance()
            return rule.Number(cast(int | float, token.value), position=token.position)
        if token.kind is TokenKind.STRING:
            self._advance()
            return rule.Text(cast(str, token.value), position=token.position)
        if token.is_punctuation("("):
            self._advance()
            with self._nested(token):
                inner = self._disjunction()
            self._expect_punctuation(
                ")", f"expected ')' (the '(' at column {token.position + 1} is still open)"
            )
            return inner
        if token.kind is TokenKind.NAME:
            self._advance()
            if self._peek().is_punctuation("("):
                return self._call(token)
            return rule.Feature(token.text, position=token.position)
        if token.is_keyword("null"):
            reason = (
                "null is tested with 'is null' or 'is not null' (to replace it: coalesce(x, 0))"
            )
            raise self._error(reason, token, found=None)
        raise self._error("expected an operand", token)

    def _call(self, name: Token) -> Expression:
        function = name.text.lower()
        if function not in _ALL_CALLS:
            hint = did_you_mean(function, _ALL_CALLS) or f" (functions: {', '.join(_ALL_CALLS)})"
            raise self._error(f"unknown function '{name.text}'{hint}", name, found=None)
        opening = self._advance()
        if function in _NAMED_CALLS:
            argument = self._single_string(function)
            return _NAMED_CALLS[function](argument, position=name.position)
        if function == "date":
            token = self._peek()
            self._single_string(function)
            return nodes.DateLiteral(self._parse_date(token), position=name.position)
        if function == "now":
            self._expect_punctuation(")", "now() takes no arguments")
            return nodes.Now(position=name.position)
        if function == "days_ago":
            return self._days_ago(name)
        arguments = self._arguments(opening, function)
        if function in TIME_FUNCTIONS:
            if len(arguments) != 1:
                reason = f"{function}() takes exactly one time field, not {len(arguments)}"
                raise ParseError(reason, self._text, name.position)
            return nodes.TimeFunction(function, arguments[0], position=name.position)
        _check_arity(function, len(arguments), self._text, name.position)
        rule_function = cast(rule.FunctionName, function)
        return rule.Call(rule_function, tuple(arguments), position=name.position)  # type: ignore[arg-type]

    def _arguments(self, opening: Token, function: str) -> list[Expression]:
        arguments: list[Expression] = []
        with self._nested(opening):  # the '(' of the call
            if not self._peek().is_punctuation(")"):
                arguments.append(self._disjunction())
                while self._peek().is_punctuation(","):
                    self._advance()
                    arguments.append(self._disjunction())
        self._expect_punctuation(")", f"expected ',' or ')' in the arguments of {function}()")
        return arguments

    def _single_string(self, function: str) -> str:
        token = self._peek()
        if token.kind is not TokenKind.STRING:
            raise self._error(f"{function}() takes one quoted name, e.g. {function}('vip')", token)
        self._advance()
        self._expect_punctuation(")", f"{function}() takes exactly one argument")
        value = cast(str, token.value)
        if not value.strip():
            raise self._error(f"{function}() needs a non-empty name", token, found=None)
        return value

    def _days_ago(self, name: Token) -> nodes.DaysAgo:
        number = self._peek()
        if number.kind is not TokenKind.NUMBER:
            raise self._error("days_ago() takes a number of days", number)
        self._advance()
        self._expect_punctuation(")", "days_ago() takes exactly one argument")
        days = cast(int | float, number.value)
        if days > MAX_WINDOW_DAYS * 10:
            raise self._error(f"days_ago({days}) is too far back", number, found=None)
        return nodes.DaysAgo(days, position=name.position)

    # -- tokens -------------------------------------------------------------------

    @staticmethod
    def _is_word(token: Token, *words: str) -> bool:
        return token.kind is TokenKind.NAME and token.text.lower() in words

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _accept_keyword(self, word: str) -> bool:
        if self._peek().is_keyword(word):
            self._advance()
            return True
        return False

    def _expect_keyword(self, word: str, reason: str) -> None:
        if not self._accept_keyword(word):
            raise self._error(reason, self._peek())

    def _expect_word(self, word: str, reason: str, *, also: tuple[str, ...] = ()) -> None:
        if not self._is_word(self._peek(), word, *also):
            raise self._error(reason, self._peek())
        self._advance()

    def _expect_punctuation(self, symbol: str, reason: str) -> None:
        if not self._peek().is_punctuation(symbol):
            raise self._error(reason, self._peek())
        self._advance()

    @contextmanager
    def _nested(self, token: Token) -> Iterator[None]:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            reason = (
                f"the expression nests brackets, 'not', '-' or calls more than {MAX_NESTING} deep"
            )
            raise self._error(reason, token, found=None)
        try:
            yield
        finally:
            self._nesting -= 1

    def _error(self, reason: str, token: Token, *, found: str | None = "") -> ParseError:
        shown = describe(token) if found == "" else found
        if shown == "the end of the rule":
            shown = "the end of the expression"
        return ParseError(reason, self._text, token.position, found=shown)

    def _is_followed_start(self, token: Token) -> bool:
        following = self._tokens[min(self._index + 1, len(self._tokens) - 1)]
        if token.is_keyword("not"):
            return self._is_word(following, "followed")
        return self._is_word(token, "followed")


def _looks_like_date(text: str) -> bool:
    return len(text) == 10 and text[4] == "-" and text[7] == "-"


def _check_arity(function: str, count: int, text: str, position: int) -> None:
    if function == "abs" and count != 1:
        raise ParseError(f"abs() takes exactly one value, not {count}", text, position)
    if function != "abs" and count < 2:
        hint = (
            "the value and its replacement"
            if function == "coalesce"
            else "it compares values of one customer; it is not an aggregate"
        )
        raise ParseError(f"{function}() takes two or more values ({hint})", text, position)
