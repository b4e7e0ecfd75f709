"""The names a segment may use, read from the stores: fields, event types, tags, segments.

Fields and their kinds come from the evaluation frame's schema, so a new
feature or prediction column is usable the moment it is computed. Event types
are the distinct types stored (a segment on a type never seen is an error, a
typo caught on save rather than an empty segment found a week later); they are
cached per warehouse version, since reading them scans the events.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.segments.kinds import Catalog, kinds_of_arrow_schema
from perennial.store.backends import Backend

__all__ = ["build_catalog", "stored_event_types"]

_cache: dict[tuple[Path, int], frozenset[str]] = {}
_lock = threading.Lock()


def stored_event_types(
    backend: Backend, events: ir.Table, warehouse: Path, version: int
) -> frozenset[str]:
    """Distinct ``event_type`` values in the events of warehouse ``version``."""
    key = (warehouse.resolve(), version)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    found = backend.to_pyarrow(events.select("event_type").distinct())
    types = frozenset(value for value in found.column("event_type").to_pylist() if value)
    with _lock:
        if len(_cache) > 32:
            _cache.clear()
        _cache[key] = types
    return types


def build_catalog(
    frame: ir.Table,
    event_types: Collection[str],
    tags: Collection[str],
    segments: Collection[str],
) -> Catalog:
    fields = kinds_of_arrow_schema(frame.schema().to_pyarrow())
    return Catalog(fields, frozenset(event_types), frozenset(tags), frozenset(segments))
