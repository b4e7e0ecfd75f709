"""What the abuse tests send and what they check every answer for.

Hostile strings (injection, markup, templates, control and invisible characters),
the text fields of a request body found from the OpenAPI document (so a new field is
attacked without a change here), a check that an error body leaks nothing, and
snapshots of the operational store to prove a refused write changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from httpx import Response

HOSTILE = {
    "sql": "'; DROP TABLE users; --",
    "sql_or": "x' OR '1'='1",
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "template": "{{7*7}} {% print(7*7) %} ${7*7} #{7*7}",
    "jndi": "${jndi:ldap://x/a}",
    "format": "%s %d %n {0} {name}",
    "nul": "a\x00b",
    "crlf": "a\r\nSet-Cookie: pwned=1",
    "rtl": "abc\u202edcba\u202c",
    "zero_width": "a\u200bb\u200c\u200d\ufeff",
    "emoji": "李明 👋🏽 é",
    "traversal": "../../../../etc/passwd",
}
"""Name -> value; none has surrounding spaces (some fields trim or refuse those)."""

_LEAKS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"traceback",
        r'file "',
        r"\.py\b",
        r"site-packages",
        r"sqlalchemy|sqlite3|duckdb|psycopg|pyarrow|polars",
        r"\bselect\b.+\bfrom\b",
        r"\binsert into\b|\bupdate\b.+\bset\b|\bdelete from\b",
        r"\$argon2",
        r"/work/|/tmp/|/home/|/root/|/etc/",
    )
]


def leaks(text: str, secrets: Iterable[str] = (), sent: Iterable[str] = ()) -> list[str]:
    """What ``text`` (an error body) gives away: stack traces, SQL, paths or ``secrets``.

    The caller's own input (``sent``) may be echoed back, so it is removed first.
    """
    for value in sent:
        for spelling in (value, orjson.dumps(value).decode()[1:-1], repr(value)[1:-1]):
            text = text.replace(spelling, "")
    found = [pattern.pattern for pattern in _LEAKS if pattern.search(text)]
    return found + [secret for secret in secrets if secret and secret in text]


def assert_clean_error(
    response: Response, *, secrets: Iterable[str] = (), sent: Iterable[str] = ()
) -> None:
    """A 4xx/5xx answer: the one error body for JSON, and nothing given away."""
    assert response.status_code >= 400, response.status_code
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "field"}, body
    found = leaks(response.text, list(secrets), list(sent))
    assert not found, (found, response.text)


@dataclass(frozen=True)
class TextField:
    """A place in a request body that holds text: a value, or the keys of an object."""

    path: tuple[str | int, ...]
    max_length: int | None
    keys: bool = False
    """The object's keys (and values) are the text, as in free-form ``properties``."""

    @property
    def name(self) -> str:
        return ".".join(str(part) for part in self.path) + ("{}" if self.keys else "")


def text_fields(schema: dict[str, Any], components: dict[str, Any]) -> list[TextField]:
    """Every text field of an object schema, nested objects and first array items included."""
    return list(_walk(schema, components, ()))


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if isinstance(reference, str):
        resolved: dict[str, Any] = components[reference.rsplit("/", 1)[1]]
        return resolved
    return schema


def _variants(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, components)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options and "type" not in schema and "properties" not in schema:
        return [_resolve(option, components) for option in options]
    return [schema]


def _walk(
    schema: dict[str, Any], components: dict[str, Any], path: tuple[str | int, ...]
) -> Iterator[TextField]:
    for variant in _variants(schema, components):
        kind = variant.get("type")
        if kind == "string" and "enum" not in variant and "format" not in variant:
            yield TextField(path, variant.get("maxLength"))
        elif kind == "object" and "properties" in variant:
            for name, child in variant["properties"].items():
                yield from _walk(child, components, (*path, name))
        elif kind == "object":
            yield TextField(path, None, keys=True)
        elif kind == "array":
            yield from _walk(variant.get("items", {}), components, (*path, 0))


def with_value(body: Any, field: TextField, value: str) -> Any:
    """A copy of ``body`` with ``value`` at the field (as key and value for objects)."""
    copy = _copy(body)
    target = copy
    for part in field.path[:-1]:
        target = target[part]
    target[field.path[-1]] = {value: value} if field.keys else value
    return copy


def value_at(body: Any, field: TextField) -> Any:
    for part in field.path:
        body = body[part]
    return body


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the operational store, for before/after comparisons."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted((tuple(row) for row in connection.execute(sa.select(table))), key=repr)
            for name, table in metadata.tables.items()
        }


def file_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
