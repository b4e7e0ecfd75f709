"""Rows broken the way real feeds break, so the demo shows quarantine at work.

A file with ``rows`` rows gets exactly ``round(dirty_fraction * rows)`` broken
ones. Parquet stays type-valid (negative amounts on paid orders, unknown
currency, empty customer ids, timestamps in 2099); CSV and JSON Lines can break
harder (impossible dates, truncated JSON).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "choose_dirty_rows",
    "corrupt_customers",
    "corrupt_json_line",
    "corrupt_orders",
    "dirty_count",
]

IntArray = npt.NDArray[np.int64]

IMPOSSIBLE_DATE = "2024-13-45"
FUTURE_YEAR = 2099
_TS_FIELD = re.compile(rb'"ts":"(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"')
_YEAR_SHIFT_MICROS = int(
    (datetime(FUTURE_YEAR, 1, 1, tzinfo=UTC) - datetime(2024, 1, 1, tzinfo=UTC)).total_seconds()
    * 1_000_000
)


def dirty_count(rows: int, fraction: float) -> int:
    """How many of a file's ``rows`` rows are broken."""
    return round(fraction * rows)


def choose_dirty_rows(rng: np.random.Generator, rows: int, fraction: float) -> IntArray:
    """Sorted positions of the rows to break in a file of ``rows`` rows."""
    chosen = rng.choice(rows, size=dirty_count(rows, fraction), replace=False)
    return np.sort(chosen).astype(np.int64)


def _mask(rows: int, positions: IntArray) -> pa.Array:
    mask = np.zeros(rows, dtype=np.bool_)
    mask[positions] = True
    return pa.array(mask)


def _replace(column: pa.Array, rows: int, positions: IntArray, values: pa.Array) -> pa.Array:
    return pc.replace_with_mask(column, _mask(rows, positions), values.cast(column.type))


def corrupt_orders(table: pa.Table, positions: IntArray) -> pa.Table:
    """Break the orders at ``positions`` in turn: negative paid amount, currency ``XYZ``,
    empty customer id, placed in 2099."""
    rows = table.num_rows
    kinds = [positions[kind::4] for kind in range(4)]
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}
    negative, currency, anonymous, future = kinds
    amount = columns["amount"]
    columns["amount"] = _replace(amount, rows, negative, pc.negate(amount.take(pa.array(negative))))
    columns["status"] = _replace(
        columns["status"], rows, negative, pa.array(["paid"] * negative.shape[0])
    )
    columns["currency"] = _replace(
        columns["currency"], rows, currency, pa.array(["XYZ"] * currency.shape[0])
    )
    columns["customer_id"] = _replace(
        columns["customer_id"], rows, anonymous, pa.array([""] * anonymous.shape[0])
    )
    placed = columns["placed_at"]
    shifted = pc.add(placed.take(pa.array(future)).cast(pa.int64()), _YEAR_SHIFT_MICROS)
    columns["placed_at"] = _replace(placed, rows, future, shifted.cast(placed.type))
    return pa.Table.from_arrays(list(columns.values()), schema=table.schema)


def corrupt_customers(table: pa.Table, positions: IntArray) -> pa.Table:
    """Break the customer records at ``positions`` in turn: impossible sign-up date,
    empty customer id, sign-up in 2099."""
    rows = table.num_rows
    impossible, anonymous, future = (positions[kind::3] for kind in range(3))
    created = table.column("created_at").combine_chunks()
    created = _replace(
        created, rows, impossible, pa.array([f"{IMPOSSIBLE_DATE}T08:00:00Z"] * impossible.shape[0])
    )
    in_future = pc.utf8_replace_slice(created.take(pa.array(future)), 0, 4, str(FUTURE_YEAR))
    created = _replace(created, rows, future, in_future)
    customer_ids = _replace(
        table.column("customer_id").combine_chunks(),
        rows,
        anonymous,
        pa.array([""] * anonymous.shape[0]),
    )
    table = table.set_column(table.schema.get_field_index("created_at"), "created_at", created)
    return table.set_column(0, "customer_id", customer_ids)


def corrupt_json_line(line: bytes, kind: int) -> bytes:
    """A broken version of a JSON line of the same length (so it can be patched in place).

    Kind 0 truncates the record (the rest blanked), 1 gives it an impossible
    timestamp, 2 moves it to 2099. The trailing newline is kept.
    """
    body = line.rstrip(b"\n")
    newline = line[len(body) :]
    match = _TS_FIELD.search(body)
    if kind == 0 or match is None:
        half = len(body) // 2
        return body[:half] + b" " * (len(body) - half) + newline
    start = match.start(1)
    if kind == 1:
        broken = f"{IMPOSSIBLE_DATE}T08:00:00Z".encode()
        return body[:start] + broken + body[start + len(broken) :] + newline
    return body[:start] + str(FUTURE_YEAR).encode() + body[start + 4 :] + newline
