"""The buy-till-you-die summary as numpy arrays: validated once, compressed for fitting.

Every BTYD model reads the same four numbers per customer (Fader, Hardie & Lee 2005,
section 2): ``frequency`` x (repeat purchases), ``recency`` t_x (time of the last repeat
purchase since the first purchase), ``T`` (time from the first purchase to the end of
calibration) and, for Gamma-Gamma, ``monetary_value`` (mean value of the repeat
purchases). Units are whatever the summary used (weeks for ``unit_days=7``).

Rules a summary must keep, checked here so models never see bad numbers: every value
finite, ``frequency`` a whole number >= 0, ``0 <= recency <= T``, and ``recency == 0``
when ``frequency == 0``. A breach raises :class:`BtydInputError` naming the customer and
the column. ``monetary_value`` may be missing (null or NaN) or non-positive: Gamma-Gamma
leaves such customers out (see ``gamma_gamma``), the count models ignore the column.

``T == 0`` (a customer whose first purchase fell on the last calibration day) is kept:
it carries no information (its likelihood is 1 under BG/NBD and Pareto/NBD), P(alive)
is 1 and predictions are those of a brand-new customer, all finite.

Fitting runs on unique (x, t_x, T) rows with weights (``compress_summary``): customers
summarised in days share few distinct rows, so a likelihood costs per distinct row, not
per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.errors import ExitCode, PerennialError

__all__ = [
    "BtydInputError",
    "BtydSummary",
    "CompressedSummary",
    "FloatArray",
    "IndexArray",
    "SummaryLike",
    "as_summary",
    "compress_summary",
    "distinct_rows",
    "require_horizon",
]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

_COUNT_COLUMNS = ("frequency", "recency", "T")
_SHOWN_CUSTOMERS = 3


class BtydInputError(PerennialError):
    """A summary breaks the BTYD data contract: says which customer, which column and why."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, reason: str, *, customer_id: str | None = None, column: str | None = None):
        self.reason = reason
        self.customer_id = customer_id
        self.column = column
        where = []
        if customer_id is not None:
            where.append(f"customer {customer_id!r}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


@dataclass(frozen=True, eq=False)
class CompressedSummary:
    """Distinct (frequency, recency, T) rows, how many customers share each, and the way back.

    ``inverse[i]`` is the distinct row of customer ``i``: ``values[inverse]`` expands a
    per-row result to one value per customer.
    """

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    weight: FloatArray
    inverse: IndexArray

    def __len__(self) -> int:
        return len(self.frequency)


@dataclass(frozen=True, eq=False)
class BtydSummary:
    """One validated row per customer; build it with ``from_arrays`` or ``from_arrow``.

    ``monetary_value`` holds NaN where the spend is missing, or is None when the
    input had no spend column at all.
    """

    customer_id: npt.NDArray[Any]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray | None = None

    @classmethod
    def from_arrays(
        cls,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        monetary_value: npt.ArrayLike | None = None,
        customer_id: npt.ArrayLike | None = None,
    ) -> BtydSummary:
        """Validate and wrap arrays; without ids, customers are named by row number (0, 1, ...)."""
        columns = {
            "frequency": _as_float_column(frequency, "frequency"),
            "recency": _as_float_column(recency, "recency"),
            "T": _as_float_column(T, "T"),
        }
        for name, column in columns.items():
            if column.ndim != 1:
                raise BtydInputError(
                    f"expected a 1-d column, got shape {column.shape}", column=name
                )
        n = len(columns["frequency"])
        ids = np.arange(n) if customer_id is None else np.asarray(customer_id)
        spend = (
            None if monetary_value is None else _as_float_column(monetary_value, "monetary_value")
        )
        for name, values in (("customer_id", ids), *columns.items(), ("monetary_value", spend)):
            if values is not None and (values.ndim != 1 or len(values) != n):
                raise BtydInputError(
                    f"expected a 1-d column of {n} values, got shape {values.shape}", column=name
                )
        summary = cls(ids, columns["frequency"], columns["recency"], columns["T"], spend)
        summary.validate()
        return summary

    @classmethod
    def from_arrow(cls, table: pa.Table) -> BtydSummary:
        """Read ``summary_for_btyd`` output (after ``backend.to_pyarrow``); nulls in counts fail."""
        missing = [c for c in ("customer_id", *_COUNT_COLUMNS) if c not in table.column_names]
        if missing:
            raise BtydInputError(f"the summary has no column(s) {', '.join(missing)}")
        ids = table.column("customer_id").to_numpy(zero_copy_only=False)
        for name in _COUNT_COLUMNS:
            _reject_nulls(table.column(name), name, ids)
        spend = None
        if "monetary_value" in table.column_names:
            column = table.column("monetary_value").cast(pa.float64())
            spend = column.fill_null(float("nan")).to_numpy()
        frequency, recency, T = (
            table.column(name).cast(pa.float64()).to_numpy() for name in _COUNT_COLUMNS
        )
        return cls.from_arrays(frequency, recency, T, monetary_value=spend, customer_id=ids)

    def __len__(self) -> int:
        return len(self.frequency)

    def validate(self) -> None:
        """Raise :class:`BtydInputError` at the first customer breaking the data contract."""
        for name in (*_COUNT_COLUMNS, "monetary_value"):
            values = getattr(self, name)
            if values is None:
                continue
            bad = np.isinf(values) if name == "monetary_value" else ~np.isfinite(values)
            self._fail_where(bad, name, "is not a finite number")
        self._fail_where(self.frequency < 0, "frequency", "is negative")
        self._fail_where(self.frequency != np.round(self.frequency), "frequency", "is not whole")
        self._fail_where(self.recency < 0, "recency", "is negative")
        self._fail_where(self.T < 0, "T", "is negative")
        self._fail_where(self.recency > self.T, "recency", "is later than T")
        self._fail_where(
            (self.frequency == 0) & (self.recency != 0),
            "recency",
            "is not 0 although frequency is 0 (no repeat purchase has no recency)",
        )

    def to_arrow(self) -> pa.Table:
        """The summary as a table with the ``summary_for_btyd`` column names."""
        columns: dict[str, Any] = {
            "customer_id": pa.array(self.customer_id.tolist()),
            "frequency": pa.array(self.frequency.astype(np.int64)),
            "recency": pa.array(self.recency),
            "T": pa.array(self.T),
        }
        if self.monetary_value is not None:
            columns["monetary_value"] = pa.array(self.monetary_value, from_pandas=True)
        return pa.table(columns)

    @cached_property
    def compressed(self) -> CompressedSummary:
        """Distinct (frequency, recency, T) rows, computed once per summary."""
        return compress_summary(self.frequency, self.recency, self.T)

    def _fail_where(self, bad: npt.NDArray[np.bool_], column: str, reason: str) -> None:
        if not bad.any():
            return
        rows = np.flatnonzero(bad)
        first = rows[0]
        value = getattr(self, column)[first]
        others = f" (and {len(rows) - 1} more customers)" if len(rows) > 1 else ""
        raise BtydInputError(
            f"{column} = {value!r} {reason}{others}",
            customer_id=str(self.customer_id[first]),
            column=column,
        )


SummaryLike: TypeAlias = "BtydSummary | pa.Table"
"""What model functions accept: a validated summary or a ``summary_for_btyd`` table."""


def as_summary(data: SummaryLike) -> BtydSummary:
    """A validated :class:`BtydSummary` from either accepted input."""
    if isinstance(data, BtydSummary):
        return data
    if isinstance(data, pa.Table):
        return BtydSummary.from_arrow(data)
    raise TypeError(f"expected a BtydSummary or a pyarrow Table, got {type(data).__name__}")


def require_horizon(t: float | FloatArray) -> None:
    """Prediction horizons are finite and not negative, in the summary's time unit."""
    horizon = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ValueError(f"the horizon t must be finite and >= 0, got {t!r}")


def compress_summary(
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
) -> CompressedSummary:
    """Group identical (x, t_x, T) rows, with each group's size as its weight."""
    first, inverse, counts = distinct_rows(frequency, recency, T)
    return CompressedSummary(
        frequency[first], recency[first], T[first], counts.astype(np.float64), inverse
    )


def distinct_rows(*columns: FloatArray) -> tuple[IndexArray, IndexArray, IndexArray]:
    """(index of a row of each distinct combination, row -> combination, combination sizes).

    Each column is factorised on its own (one sort of its values), and the codes are
    combined into one integer key. When the key space is small (summaries in days have
    few distinct values per column) the keys are grouped by counting, in linear time;
    otherwise by one more sort. Both are several times faster than ``np.lexsort`` or
    ``np.unique(axis=0)``, which need stable sorts of float rows.
    """
    n = len(columns[0])
    if n == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, empty
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for column in columns:
        values, codes = np.unique(column, return_inverse=True)
        if space * len(values) >= 2**62:
            return _distinct_by_sorting(columns)
        key = key * len(values) + codes
        space *= len(values)
    if space <= 2 * n + 1024:
        counts = np.bincount(key, minlength=space)
        present = np.flatnonzero(counts)
        group_of_key = np.zeros(space, dtype=np.intp)
        group_of_key[present] = np.arange(len(present))
        inverse = group_of_key[key]
        group_counts = counts[present]
    else:
        _, inverse, group_counts = np.unique(key, return_inverse=True, return_counts=True)
    representative = np.empty(len(group_counts), dtype=np.intp)
    representative[inverse] = np.arange(n)  # rows of a group are equal: any one will do
    return representative, inverse.astype(np.intp), group_counts.astype(np.intp)


def _distinct_by_sorting(
    columns: tuple[FloatArray, ...],
) -> tuple[IndexArray, IndexArray, IndexArray]:
    n = len(columns[0])
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    starts = np.ones(n, dtype=bool)
    starts[1:] = np.any([c[1:] != c[:-1] for c in ordered], axis=0)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    first_sorted = np.flatnonzero(starts)
    counts = np.diff(np.append(first_sorted, n)).astype(np.intp)
    return order[first_sorted].astype(np.intp), inverse, counts


def _as_float_column(values: npt.ArrayLike, column: str) -> FloatArray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BtydInputError(f"values are not numbers ({err})", column=column) from err


def _reject_nulls(column: pa.ChunkedArray, name: str, ids: npt.NDArray[Any]) -> None:
    if column.null_count == 0:
        return
    nulls = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
    shown = ", ".join(repr(str(ids[i])) for i in nulls[:_SHOWN_CUSTOMERS])
    raise BtydInputError(
        f"{len(nulls)} null value(s) (customers {shown}); every customer needs {name}",
        customer_id=str(ids[nulls[0]]),
        column=name,
    )
