"""The lifecycle board's tables, computed at refresh from the stage history, orders and profiles.

Every board answer is read from these, so the stage distribution, the flows,
the KPI cards and the RFM grid of one refresh agree with each other (and with
:mod:`perennial.lifecycle.flows`, which computes the same from the warehouse).
Days are local days of the stage model's zone, as in the stage history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.lifecycle.flows import NEW, UNMATCHED
from perennial.lifecycle.rfm_config import RfmConfig
from perennial.serving.packed import write_array
from perennial.serving.transfer import copy_query

__all__ = [
    "EPOCH",
    "FLOW_PREFIX",
    "PURCHASE_PREFIX",
    "epoch_day",
    "write_purchases",
    "write_revenue",
    "write_rfm",
    "write_stage_daily",
    "write_transitions",
]

EPOCH = date(1970, 1, 1)
FLOW_PREFIX = "flow_"
PURCHASE_PREFIX = "purchase_"


def epoch_day(day: date) -> int:
    """Days since 1970-01-01: how the serving store keeps days."""
    return (day - EPOCH).days


def write_stage_daily(
    duck: duckdb.DuckDBPyConnection, target: sqlite3.Connection, fallback_day: date
) -> tuple[date, date] | None:
    """Customers per day and stage from the history; its first and last day (None without).

    Without any history, the profiles' own day stands in, so the board still shows
    where customers stand today.
    """
    span = duck.sql("SELECT min(day), max(day) FROM srv_history").fetchall()[0]
    if span[0] is not None:
        query = (
            "SELECT srv_epoch_day(day), coalesce(stage, $unmatched), count(*) "
            "FROM srv_history GROUP BY ALL ORDER BY 1, 2"
        )
        copy_query(duck, query, target, "stage_daily", params={"unmatched": UNMATCHED})
        return span[0], span[1]
    query = (
        "SELECT $day, coalesce(stage, $unmatched), count(*) FROM srv_profiles "
        "GROUP BY ALL ORDER BY 2"
    )
    params = {"day": epoch_day(fallback_day), "unmatched": UNMATCHED}
    copy_query(duck, query, target, "stage_daily", params=params)
    return None


_TRANSITIONS = """
    SELECT customer_id, srv_epoch_day(day) AS day, from_stage, to_stage FROM srv_transitions
    QUALIFY row_number() OVER (PARTITION BY customer_id, day ORDER BY to_stage) = 1
    ORDER BY customer_id, day
"""

_FLOWS = """
    WITH t AS (
        SELECT customer_id, day, from_stage, to_stage FROM srv_transitions
        QUALIFY row_number() OVER (PARTITION BY customer_id, day ORDER BY to_stage) = 1
    ),
    known_before AS (
        SELECT t.customer_id, t.day FROM t
        SEMI JOIN srv_history AS h ON h.customer_id = t.customer_id AND h.day = t.day - 1
        WHERE t.from_stage IS NULL
    )
    SELECT CAST(dense_rank() OVER (ORDER BY t.customer_id) - 1 AS INTEGER) AS customer,
           srv_epoch_day(t.day) AS day,
           CASE WHEN t.from_stage IS NOT NULL THEN t.from_stage
                WHEN k.customer_id IS NOT NULL THEN $unmatched ELSE $new END AS from_key,
           coalesce(t.to_stage, $unmatched) AS to_key
    FROM t LEFT JOIN known_before AS k USING (customer_id, day)
    ORDER BY customer, day
"""


def write_transitions(
    duck: duckdb.DuckDBPyConnection, target: sqlite3.Connection, model_keys: Sequence[str]
) -> tuple[int, list[str]]:
    """The customers' transitions (for the 360) and their packed flow arrays (for the board).

    In the flow arrays a null ``from_stage`` becomes :data:`NEW` when the customer
    was not in the history the day before and :data:`UNMATCHED` when they were
    (no stage matched then); a null ``to_stage`` is :data:`UNMATCHED`. Returns the
    number of transitions and the stage keys the arrays' codes index.
    """
    count = copy_query(duck, _TRANSITIONS, target, "transitions")
    flows = duck.sql(_FLOWS, params={"unmatched": UNMATCHED, "new": NEW}).to_arrow_table()
    observed = pc.unique(
        pa.concat_arrays([flows["from_key"].combine_chunks(), flows["to_key"].combine_chunks()])
    )
    extra = sorted(set(observed.to_pylist()) - set(model_keys) - {UNMATCHED, NEW})
    codes = [*model_keys, *extra, UNMATCHED, NEW]
    code_set = pa.array(codes)
    write_array(target, f"{FLOW_PREFIX}customer", _ints(flows["customer"], np.int32))
    write_array(target, f"{FLOW_PREFIX}day", _ints(flows["day"], np.int32))
    for column in ("from_key", "to_key"):
        indexed = pc.index_in(flows[column], value_set=code_set)
        write_array(target, f"{FLOW_PREFIX}{column}", _ints(indexed, np.int16))
    return count, codes


def write_revenue(duck: duckdb.DuckDBPyConnection, target: sqlite3.Connection, zone: str) -> None:
    """Paid orders and their amount per local day and currency."""
    query = (
        "SELECT srv_local_day(placed_at, $zone) AS day, currency, count(*), "
        "round(CAST(sum(amount) AS DOUBLE), 4) FROM srv_orders WHERE status = 'paid' "
        "GROUP BY ALL ORDER BY 1, 2"
    )
    copy_query(duck, query, target, "revenue_daily", params={"zone": zone})


def write_purchases(duck: duckdb.DuckDBPyConnection, target: sqlite3.Connection, zone: str) -> None:
    """Packed (day, customer, paid orders that day), by day: repeat buyers of any period."""
    table = duck.sql(
        """
        SELECT srv_local_day(placed_at, $zone) AS day,
               CAST(dense_rank() OVER (ORDER BY customer_id) - 1 AS INTEGER) AS customer,
               count(*) AS orders
        FROM srv_orders WHERE status = 'paid'
        GROUP BY day, customer_id ORDER BY day, customer
        """,
        params={"zone": zone},
    ).to_arrow_table()
    write_array(target, f"{PURCHASE_PREFIX}day", _ints(table["day"], np.int32))
    write_array(target, f"{PURCHASE_PREFIX}customer", _ints(table["customer"], np.int32))
    write_array(target, f"{PURCHASE_PREFIX}orders", _ints(table["orders"], np.int32))


def write_rfm(
    duck: duckdb.DuckDBPyConnection, target: sqlite3.Connection, config: RfmConfig
) -> None:
    """Customers and monetary total per R x F cell (all 25) and per named segment (all)."""
    cells = {
        (r, f): (customers, revenue)
        for r, f, customers, revenue in duck.sql(
            "SELECT rfm_r, rfm_f, count(*), round(coalesce(sum(monetary_total), 0), 4) "
            "FROM srv_profiles WHERE rfm_r IS NOT NULL AND rfm_f IS NOT NULL GROUP BY ALL"
        ).fetchall()
    }
    target.executemany(
        "INSERT INTO rfm_cells VALUES (?, ?, ?, ?)",
        [(r, f, *cells.get((r, f), (0, 0.0))) for r in range(1, 6) for f in range(1, 6)],
    )
    segments = {
        key: (customers, revenue)
        for key, customers, revenue in duck.sql(
            "SELECT rfm_segment, count(*), round(coalesce(sum(monetary_total), 0), 4) "
            "FROM srv_profiles WHERE rfm_segment IS NOT NULL GROUP BY ALL"
        ).fetchall()
    }
    labels = {key: segment.label for key, segment in config.segments.items()}
    labels[config.no_orders.key] = config.no_orders.label
    rows = [
        (key, label.en, label.zh, *segments.get(key, (0, 0.0)), position)
        for position, (key, label) in enumerate(labels.items())
    ]
    rows += [
        (key, key, key, customers, revenue, len(rows) + offset)
        for offset, (key, (customers, revenue)) in enumerate(sorted(segments.items()))
        if key not in labels
    ]
    target.executemany("INSERT INTO rfm_segments VALUES (?, ?, ?, ?, ?, ?)", rows)


def _ints(column: pa.ChunkedArray | pa.Array, dtype: type[np.generic]) -> npt.NDArray[Any]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=dtype)
