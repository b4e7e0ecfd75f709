"""A recursive-descent parser for the rule language, from tokens to a typed tree.

Hand-written rather than generated: the grammar is a dozen lines, the project
takes no parser dependency (``lark`` is not installed), and a hand-written parser
says exactly what it expected and where ("expected an operand at column 17")
instead of a generator's list of token names. It never evaluates anything.

Grammar, lowest precedence first (keywords case-insensitive)::

    rule        = disjunction END
    disjunction = conjunction ("or" conjunction)*
    conjunction = negation ("and" negation)*
    negation    = "not" negation | predicate
    predicate   = sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
                      | "is" ["not"] "null"
                      | ["not"] "in" "(" literal ("," literal)* ")"
                      | ["not"] "between" sum "and" sum ]
    sum         = product (("+" | "-") product)*
    product     = unary (("*" | "/") unary)*
    unary       = "-" unary | primary
    primary     = NUMBER | STRING | NAME | NAME "(" disjunction ("," disjunction)* ")"
                | "(" disjunction ")"
    literal     = NUMBER | "-" NUMBER | STRING
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import cast

from perennial.lifecycle import rule_ast as nodes
from perennial.lifecycle.rule_ast import FUNCTIONS, Expression, depth
from perennial.lifecycle.rule_errors import ParseError, did_you_mean
from perennial.lifecycle.rule_lexer import Token, TokenKind, describe, tokenize

__all__ = ["MAX_DEPTH", "MAX_NESTING", "parse_rule"]

MAX_NESTING = 32
"""Brackets, ``not``, ``-`` and calls inside each other: deeper is surely a mistake."""
MAX_DEPTH = 64
"""Levels in the finished tree, so compiling and evaluating stay far from recursion limits."""

_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_MISPLACED_KEYWORDS = {
    "null": "null is tested with 'is null' or 'is not null' (to replace it: coalesce(x, 0))",
    "otherwise": "'otherwise' can only be the whole rule of the last stage",
}
_NOT_AN_AGGREGATE = "it compares values of one customer; it is not an aggregate"


def parse_rule(text: str, known_features: Collection[str] | None = None) -> Expression:
    """Parse ``text`` into a tree; raises :class:`ParseError` pointing at the column.

    With ``known_features``, a name that is not among them is an error naming it
    and suggesting close matches; without, any name is accepted (kinds and
    columns are checked later, against a table).
    """
    return _Parser(text, known_features).parse()


class _Parser:
    def __init__(self, text: str, known_features: Collection[str] | None) -> None:
        self._text = text
        self._tokens = tokenize(text)
        self._index = 0
        self._nesting = 0
        self._known = None if known_features is None else frozenset(known_features)

    def parse(self) -> Expression:
        if self._peek().kind is TokenKind.END:
            raise ParseError("a rule cannot be empty", self._text, 0)
        expression = self._disjunction()
        token = self._peek()
        if token.is_punctuation(")"):
            raise self._error("this ')' closes nothing", token, found=None)
        if token.kind is not TokenKind.END:
            raise self._error("expected an operator, 'and', 'or' or the end of the rule", token)
        if depth(expression) > MAX_DEPTH:
            raise ParseError(f"the rule is more than {MAX_DEPTH} levels deep", self._text, 0)
        return expression

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
        node = nodes.Or if word == "or" else nodes.And
        return node(tuple(operands), position=operands[0].position)

    def _negation(self) -> Expression:
        token = self._peek()
        if not token.is_keyword("not"):
            return self._predicate()
        self._advance()
        with self._nested(token):
            return nodes.Not(self._negation(), position=token.position)

    def _predicate(self) -> Expression:
        left = self._sum()
        token = self._peek()
        if token.is_operator(*_COMPARISONS):
            self._advance()
            comparison = nodes.Comparison(
                cast(nodes.ComparisonOperator, token.text),
                left,
                self._sum(),
                position=left.position,
            )
            if self._peek().is_operator(*_COMPARISONS):
                reason = "comparisons cannot be chained; join them with 'and' (a < b and b < c)"
                raise self._error(reason, self._peek(), found=None)
            return comparison
        if token.is_keyword("is"):
            self._advance()
            negated = self._accept_keyword("not")
            self._expect_keyword("null", "expected 'null' or 'not null' after 'is'")
            return nodes.IsNull(left, negated, position=left.position)
        negated = token.is_keyword("not")
        if negated:
            self._advance()
            if not self._peek().is_keyword("in", "between"):
                raise self._error("expected 'in' or 'between' after 'not'", self._peek())
        if self._accept_keyword("in"):
            return nodes.InList(left, self._in_list(), negated, position=left.position)
        if self._accept_keyword("between"):
            lower = self._sum()
            self._expect_keyword("and", "expected 'and' between the two bounds of 'between'")
            return nodes.Between(left, lower, self._sum(), negated, position=left.position)
        return left

    def _in_list(self) -> tuple[nodes.Number | nodes.Text, ...]:
        self._expect_punctuation("(", "expected '(' after 'in'")
        if self._peek().is_punctuation(")"):
            raise self._error("an 'in' list needs at least one value", self._peek(), found=None)
        values = [self._literal()]
        while self._peek().is_punctuation(","):
            self._advance()
            values.append(self._literal())
        self._expect_punctuation(")", "expected ',' or ')' in the 'in' list")
        return tuple(values)

    def _literal(self) -> nodes.Number | nodes.Text:
        token = self._peek()
        if token.kind is TokenKind.STRING:
            self._advance()
            return nodes.Text(cast(str, token.value), position=token.position)
        negative = token.is_operator("-")
        if negative:
            self._advance()
        number = self._peek()
        if number.kind is not TokenKind.NUMBER:
            raise self._error("an 'in' list holds numbers and quoted strings only", number)
        self._advance()
        value = cast(int | float, number.value)
        return nodes.Number(-value if negative else value, position=token.position)

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
            symbol = cast(nodes.ArithmeticOperator, token.text)
            left = nodes.Arithmetic(symbol, left, operand(), position=left.position)
        return left

    def _unary(self) -> Expression:
        token = self._peek()
        if not token.is_operator("-"):
            return self._primary()
        self._advance()
        number = self._peek()
        if number.kind is TokenKind.NUMBER:  # "-3" is a negative literal, not a negation
            self._advance()
            return nodes.Number(-cast(int | float, number.value), position=token.position)
        with self._nested(token):
            return nodes.Negate(self._unary(), position=token.position)

    def _primary(self) -> Expression:
        token = self._peek()
        if token.kind is TokenKind.NUMBER:
            self._advance()
            return nodes.Number(cast(int | float, token.value), position=token.position)
        if token.kind is TokenKind.STRING:
            self._advance()
            return nodes.Text(cast(str, token.value), position=token.position)
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
            return self._feature(token)
        if token.kind is TokenKind.KEYWORD and token.text in _MISPLACED_KEYWORDS:
            raise self._error(_MISPLACED_KEYWORDS[token.text], token, found=None)
        raise self._error("expected an operand", token)

    def _call(self, name: Token) -> nodes.Call:
        function = name.text.lower()
        if function not in FUNCTIONS:
            if self._known is not None and name.text in self._known:
                raise self._error(f"'{name.text}' is a feature, not a function", name, found=None)
            hint = did_you_mean(function, FUNCTIONS) or f" (functions: {', '.join(FUNCTIONS)})"
            raise self._error(f"unknown function '{name.text}'{hint}", name, found=None)
        opening = self._advance()
        arguments: list[Expression] = []
        with self._nested(opening):
            if not self._peek().is_punctuation(")"):
                arguments.append(self._disjunction())
                while self._peek().is_punctuation(","):
                    self._advance()
                    arguments.append(self._disjunction())
        self._expect_punctuation(")", f"expected ',' or ')' in the arguments of {function}()")
        _check_arity(function, len(arguments), self._text, name.position)
        return nodes.Call(function, tuple(arguments), position=name.position)

    def _feature(self, token: Token) -> nodes.Feature:
        if self._known is not None and token.text not in self._known:
            reason = f"unknown feature '{token.text}'{did_you_mean(token.text, self._known)}"
            raise self._error(reason, token, found=None)
        return nodes.Feature(token.text, position=token.position)

    # -- tokens -------------------------------------------------------------------

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

    def _expect_punctuation(self, symbol: str, reason: str) -> None:
        if not self._peek().is_punctuation(symbol):
            raise self._error(reason, self._peek())
        self._advance()

    @contextmanager
    def _nested(self, token: Token) -> Iterator[None]:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            reason = f"the rule nests brackets, 'not', '-' or calls more than {MAX_NESTING} deep"
            raise self._error(reason, token, found=None)
        try:
            yield
        finally:
            self._nesting -= 1

    def _error(self, reason: str, token: Token, *, found: str | None = "") -> ParseError:
        shown = describe(token) if found == "" else found
        return ParseError(reason, self._text, token.position, found=shown)


def _check_arity(function: nodes.FunctionName, count: int, text: str, position: int) -> None:
    if function == "abs" and count != 1:
        raise ParseError(f"abs() takes exactly one value, not {count}", text, position)
    if function != "abs" and count < 2:
        hint = "the value and its replacement" if function == "coalesce" else _NOT_AN_AGGREGATE
        raise ParseError(f"{function}() takes two or more values ({hint})", text, position)
