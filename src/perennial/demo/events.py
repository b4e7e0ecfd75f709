"""Behaviour events as columns, from any simulated source to the canonical layout.

Every source (sessions, orders, incidents, identity trails, courses) yields an
``EventBatch`` of events inside its customers' active lives; batches are
concatenated, sorted by time and given ids, then written as the canonical
``events`` table (properties as JSON text) or as JSON Lines (properties as nested
objects).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.calendar import chronological_order
from perennial.demo.fixed_width import iso_utc, join_columns
from perennial.schema.tables import TABLES

__all__ = ["ANONYMOUS", "EVENT_TYPES", "EventBatch", "EventType", "json_lines", "within_life"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class EventType:
    """Indices into ``EVENT_TYPES``."""

    LOGIN = 0
    PAGE_VIEW = 1
    ADD_TO_CART = 2
    SEARCH = 3
    COUPON_REDEEMED = 4
    COMPLAINT = 5
    REFUND_REQUEST = 6
    SURVEY_ANSWER = 7
    IDENTIFY = 8
    COURSE_PURCHASED = 9
    LESSON_COMPLETED = 10
    EXAM_PASSED = 11
    COURSE_COMPLETED = 12


EVENT_TYPES = (
    "login", "page_view", "add_to_cart", "search", "coupon_redeemed", "complaint",
    "refund_request", "survey_answer", "identify", "course_purchased", "lesson_completed",
    "exam_passed", "course_completed",
)  # fmt: skip

ANONYMOUS = -1
"""Customer position of an event by a visitor not yet known."""


def within_life(customer: IntArray, days: FloatArray, limit_days: FloatArray) -> BoolArray:
    """Which events happen while their customer is active: from the period's start up
    to ``limit_days`` (the customer's churn, or just before the period's end).

    Sources filter with it before building any text, so nothing is formatted twice.
    """
    return (days >= 0.0) & (days <= limit_days[customer])


@dataclass(frozen=True)
class EventBatch:
    """Events of one block: ``customer`` indexes the block (``ANONYMOUS`` for visitors).

    ``days`` are days since the period's start; ``properties`` is JSON object
    text; ``anonymous_id`` is ``None`` when no event of the batch carries one.
    """

    customer: IntArray
    days: FloatArray
    kind: IntArray
    properties: pa.Array
    anonymous_id: pa.Array | None = None

    @property
    def size(self) -> int:
        return int(self.customer.shape[0])

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """All batches as one; the anonymous id column is kept if any batch has it."""
        anonymous = None
        if any(b.anonymous_id is not None for b in batches):
            anonymous = _chunked(
                b.anonymous_id if b.anonymous_id is not None else pa.nulls(b.size, pa.string())
                for b in batches
            )
        return cls(
            customer=np.concatenate([b.customer for b in batches]),
            days=np.concatenate([b.days for b in batches]),
            kind=np.concatenate([b.kind for b in batches]),
            properties=_chunked(b.properties for b in batches),
            anonymous_id=anonymous,
        )

    def chronological(self) -> EventBatch:
        """Sorted by time (ties keep their source order), so a file's rows go day by day."""
        positions = chronological_order(self.days)
        indices = pa.array(positions)
        return EventBatch(
            customer=self.customer[positions],
            days=self.days[positions],
            kind=self.kind[positions],
            properties=_combined(self.properties).take(indices),
            anonymous_id=None
            if self.anonymous_id is None
            else _combined(self.anonymous_id).take(indices),
        )

    def to_table(
        self, event_ids: pa.Array, customer_ids: pa.Array, epoch_micros: IntArray
    ) -> pa.Table:
        """The canonical ``events`` table; ``customer_ids`` holds the block's ids."""
        return pa.Table.from_arrays(
            [
                event_ids,
                self._customer_column(customer_ids),
                self._anonymous_column(),
                _event_type_names().take(pa.array(self.kind)),
                pa.array(epoch_micros, pa.timestamp("us", tz="UTC")),
                self.properties,
            ],
            schema=TABLES["events"].arrow_schema(with_lineage=False),
        )

    def _customer_column(self, customer_ids: pa.Array) -> pa.Array:
        positions = pa.array(self.customer, mask=self.customer == ANONYMOUS)
        return customer_ids.take(positions)

    def _anonymous_column(self) -> pa.Array:
        if self.anonymous_id is None:
            return pa.nulls(self.size, pa.string())
        return self.anonymous_id


def _chunked(columns: Iterable[pa.Array | pa.ChunkedArray]) -> pa.ChunkedArray:
    """One string column from pieces, without copying them."""
    chunks: list[pa.Array] = []
    for column in columns:
        chunks.extend(column.chunks if isinstance(column, pa.ChunkedArray) else [column])
    return pa.chunked_array(chunks, pa.string())


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array: taking from it is faster than from many chunks."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _event_type_names() -> pa.Array:
    return pa.array(EVENT_TYPES, pa.string())


def _json_text_or_null(values: pa.Array) -> pa.Array:
    quoted = join_columns('"', values, '"')
    return pc.if_else(pc.is_null(values), "null", quoted)


def json_lines(table: pa.Table, epoch_seconds: IntArray) -> pa.Array:
    """One JSON Lines record per row of a canonical events table, each ending in a newline.

    Built by concatenating columns rather than serialising objects one by one; the
    values are simulated, so none contains a quote or backslash to escape.
    """
    return join_columns(
        '{"event_id":"',
        table.column("event_id").combine_chunks(),
        '","customer_id":',
        _json_text_or_null(table.column("customer_id").combine_chunks()),
        ',"anonymous_id":',
        _json_text_or_null(table.column("anonymous_id").combine_chunks()),
        ',"event_type":"',
        table.column("event_type").combine_chunks(),
        '","ts":"',
        iso_utc(epoch_seconds),
        '","properties":',
        table.column("properties").combine_chunks(),
        "}\n",
    )
