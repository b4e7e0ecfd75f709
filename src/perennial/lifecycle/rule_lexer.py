"""Split a rule's text into tokens, each with the offset where it starts.

Keywords (``and or not is null in between otherwise``) are case-insensitive, as
in SQL; feature names are case-sensitive. Numbers are ASCII digits, strings use
single quotes. Characters people type by habit from other languages (``=``,
``<>``, ``&&``, double quotes) get a message saying what to write instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

from perennial.lifecycle.rule_errors import ParseError

__all__ = ["KEYWORDS", "Token", "TokenKind", "describe", "tokenize"]

KEYWORDS = frozenset({"and", "or", "not", "is", "null", "in", "between", "otherwise"})
_INT64_MAX = 2**63 - 1

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<string>'(?:[^']|'')*')
    | (?P<operator><=|>=|==|!=|[<>+\-*/])
    | (?P<punctuation>[(),])
    """,
    re.VERBOSE,
)

_HINTS = {
    "<>": "'<>' is not an operator; write '!=' for 'not equal'",
    "=": "'=' is not an operator; write '==' to compare",
    '"': "strings are written in single quotes, e.g. 'paid_search'",
    "&": "write 'and' instead of '&'",
    "|": "write 'or' instead of '|'",
    "!": "write 'not' instead of '!'",
}


class TokenKind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    KEYWORD = "keyword"
    OPERATOR = "operator"
    PUNCTUATION = "punctuation"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """``text`` is lower-cased for keywords; ``value`` is the literal's value (number, string)."""

    kind: TokenKind
    text: str
    position: int
    value: int | float | str | None = None

    def is_keyword(self, *words: str) -> bool:
        return self.kind is TokenKind.KEYWORD and self.text in words

    def is_operator(self, *symbols: str) -> bool:
        return self.kind is TokenKind.OPERATOR and self.text in symbols

    def is_punctuation(self, symbol: str) -> bool:
        return self.kind is TokenKind.PUNCTUATION and self.text == symbol


def describe(token: Token) -> str:
    """How a message names a token: ``'and'``, ``30``, ``the end of the rule``."""
    if token.kind is TokenKind.END:
        return "the end of the rule"
    if token.kind is TokenKind.NUMBER:
        return token.text
    return repr(token.text) if token.kind is not TokenKind.STRING else f"the string {token.text}"


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with one ``END`` token; raises :class:`ParseError`."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _bad_character(text, position)
        kind = match.lastgroup
        lexeme = match.group()
        if kind == "number":
            tokens.append(_number(text, lexeme, position, match.end()))
        elif kind == "string":
            tokens.append(
                Token(TokenKind.STRING, lexeme, position, lexeme[1:-1].replace("''", "'"))
            )
        elif kind == "name":
            tokens.append(_name(lexeme, position))
        elif text.startswith("<>", position):
            raise ParseError(_HINTS["<>"], text, position)
        elif kind != "space":
            token_kind = TokenKind.OPERATOR if kind == "operator" else TokenKind.PUNCTUATION
            tokens.append(Token(token_kind, lexeme, position))
        position = match.end()
    tokens.append(Token(TokenKind.END, "", len(text)))
    return tokens


def _name(lexeme: str, position: int) -> Token:
    lowered = lexeme.lower()
    if lowered in KEYWORDS:
        return Token(TokenKind.KEYWORD, lowered, position)
    return Token(TokenKind.NAME, lexeme, position)


def _number(text: str, lexeme: str, position: int, end: int) -> Token:
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        raise ParseError(
            f"a number cannot run into a name ('{lexeme}{text[end]}...'); "
            "write days as a plain number, e.g. 30",
            text,
            position,
        )
    value: int | float
    if any(mark in lexeme for mark in ".eE"):
        value = float(lexeme)
        if not math.isfinite(value):
            raise ParseError(f"the number {lexeme} is too large", text, position)
    else:
        value = int(lexeme)
        if value > _INT64_MAX:
            raise ParseError(
                f"the number {lexeme} is too large (at most 2**63 - 1)", text, position
            )
    return Token(TokenKind.NUMBER, lexeme, position, value)


def _bad_character(text: str, position: int) -> ParseError:
    character = text[position]
    if character == "'":
        return ParseError("this string has no closing quote", text, position)
    hint = _HINTS.get(character)
    if hint is not None:
        return ParseError(hint, text, position)
    return ParseError(f"unexpected character {character!r}", text, position)
