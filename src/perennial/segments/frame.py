"""What a segment is evaluated over: one row per customer with every profile field, and events.

Fields come from three warehouse tables joined on ``customer_id``: the profile
(features, RFM, tier, stage), the predictions (P(alive), CLV, churn probability,
next order, replenishment window) and the customer record (birthday, region,
consent, ...). The rows are every customer with a profile or a record, so a
customer registered after the last profile run is already in reach of
attribute and event conditions. Predictions are fields like any other (DESIGN rule 2).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.features.history import anonymous_links, resolved_events
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.models.predictions import PREDICTIONS_SCHEMA, PREDICTIONS_TABLE
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = ["CUSTOMER_FIELDS", "SegmentFrame", "build_frame"]

CUSTOMER_FIELDS = (
    "name",
    "email",
    "phone",
    "birthday",
    "gender",
    "region",
    "timezone",
    "consent_email",
    "consent_sms",
    "consent_push",
    "consent_wechat",
)
"""Customer-record columns offered as fields (and ``registered_at``: its ``created_at``)."""

_EVENT_HORIZON = timedelta(days=3650)
_LINKS = "perennial_segment_links"
_links_cache: dict[tuple[object, int, str], pa.Table] = {}
_links_lock = threading.Lock()


@dataclass(frozen=True)
class SegmentFrame:
    """``frame``: one row per customer; ``events``: ``customer_id, event_type, ts, properties``.

    ``sources`` are the tables the frame joins (each ``customer_id`` and its fields) and
    ``ids`` every customer's id: :meth:`narrowed` joins only the sources an expression
    reads, so a count over two profile fields does not read the customer records.
    """

    frame: ir.Table
    events: ir.Table
    ids: ir.Table
    sources: tuple[ir.Table, ...]

    def narrowed(self, fields: Collection[str]) -> ir.Table:
        """One row per customer with ``customer_id`` and only ``fields``."""
        wanted = set(fields)
        frame = self.ids
        for index, source in enumerate(self.sources):
            columns = [c for c in source.columns if c in wanted and c != "customer_id"]
            if not columns:
                continue
            key = f"_join_{index}"
            picked = source.select(source.customer_id.name(key), *columns)
            frame = frame.left_join(picked, frame.customer_id == picked[key]).drop(key)
        return frame


def build_frame(
    backend: Backend, snapshot: Snapshot, now: datetime, warehouse_key: object = None
) -> SegmentFrame:
    """The fields and events of every customer in ``snapshot``.

    Events are read up to ten years past ``now``: with a pinned clock every stored
    event still counts (see :mod:`perennial.segments.compiler`).
    """
    customers = backend.table("customers", snapshot)
    records = customers.select(
        "customer_id",
        *[customers[column] for column in CUSTOMER_FIELDS],
        registered_at=customers.created_at,
    )
    sources = [records]
    profile_paths = snapshot.paths(PROFILES_TABLE)
    if profile_paths:
        profiles = backend.table(PROFILES_TABLE, snapshot, schema=pq.read_schema(profile_paths[0]))
        sources.append(_profile_fields(profiles, set(records.columns)))
    if snapshot.paths(PREDICTIONS_TABLE):
        predictions = backend.table(PREDICTIONS_TABLE, snapshot, schema=PREDICTIONS_SCHEMA)
        sources.append(_prediction_fields(predictions))
    ids = ibis.union(
        *[source.select(customer_id=source.customer_id.cast(dt.string)) for source in sources],
        distinct=True,
    )
    frame = ids
    for index, source in enumerate(sources):
        key = f"_join_{index}"
        renamed = source.rename({key: "customer_id"})
        frame = frame.left_join(renamed, frame.customer_id == renamed[key]).drop(key)
    horizon = now + _EVENT_HORIZON
    links = backend.register_arrow(_LINKS, _cached_links(backend, snapshot, horizon, warehouse_key))
    events = resolved_events(backend, snapshot, horizon, links)
    return SegmentFrame(frame, events, ids, tuple(sources))


def _cached_links(
    backend: Backend, snapshot: Snapshot, horizon: datetime, warehouse_key: object
) -> pa.Table:
    """The visitor-to-customer links of a warehouse version, computed once (one scan of
    the events) and reused by every evaluation of that version."""
    key = (warehouse_key, snapshot.version, backend.engine)
    with _links_lock:
        cached = _links_cache.get(key)
    if cached is None:
        cached = backend.to_pyarrow(anonymous_links(backend, snapshot, horizon))
        with _links_lock:
            if len(_links_cache) > 8:
                _links_cache.clear()
            _links_cache[key] = cached
    return cached


def _profile_fields(profiles: ir.Table, taken: set[str]) -> ir.Table:
    keep = [
        name
        for name, dtype in profiles.schema().items()
        if name == "customer_id" or (name not in taken and _usable(dtype))
    ]
    return profiles.select(*keep)


def _prediction_fields(predictions: ir.Table) -> ir.Table:
    keep = [
        name
        for name, dtype in predictions.schema().items()
        if name not in ("as_of", "churn_model_version") and _usable(dtype)
    ]
    return predictions.select(*keep)


def _usable(dtype: dt.DataType) -> bool:
    """Columns an expression can read: no lists, maps or structs."""
    return not (dtype.is_array() or dtype.is_map() or dtype.is_struct())
