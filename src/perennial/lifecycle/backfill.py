"""Stage history for a range of days, each day's features carried over from the day before.

Recomputing every customer's features for every day costs a full pass over all
orders and events per day. The method here recomputes, per day, only the
customers whose rows can have changed something, and gives exactly what
:func:`build_profiles` gives at that day's as-of (the end of local day D,
:func:`as_of_instant`):

1. **Eve.** Features, RFM, tier and stage are computed in full as of the day
   before the range, so the first day's transitions are real moves.
2. **Changed customers** (:func:`changed_customers`, one query per month of
   days): an order, order line, event or customer record arriving on day D
   (``[end of D-1, end of D)``), or an order or event leaving a window (arriving
   1, 7, 30, 60 or 90 days earlier: the window edges of the feature registry).
3. **Fresh rows** (:func:`fresh_features`: the features' own expressions over
   the history of these customers only): customers with new rows get every
   feature from their whole history; customers with rows leaving a window only
   get their windowed features, from their last 90 days.
4. **Everyone else** keeps D-1's row with the as-of-dependent columns moved by
   the step (:func:`shift_as_of`): no new row and no window edge crossed means
   nothing else about them moved.
5. **Population-wide rhythm** (category and population median gaps, and the
   expected next order built on them) is kept as gap histograms: D's buyers'
   gaps as of D-1 are removed and their gaps as of D added, then the columns are
   rewritten for every row (:mod:`perennial.features.rhythm_population`).
6. **RFM quantiles and value tiers** are relative to everyone, so they are
   re-scored over the whole day's table (one window pass) before the stage model
   is applied; **transitions** are the customers whose stage differs from D-1's
   (null-safe, ``from_stage`` null when not known the day before).

Steps 3 to 6 are one query compiled once for the whole range
(:class:`DayQuery`); the day before's table, the changed customers and the
day's as-of go in as Arrow tables. The
buyers' purchase days for step 5 are read once per month of days
(:mod:`perennial.lifecycle.purchase_days`). Everything is Ibis, so it runs on
DuckDB or Spark (tested on both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from perennial.features.history import load_history
from perennial.features.rhythm_population import RhythmPopulation, gap_counts
from perennial.features.snapshot import DEFAULT_TIMEZONE, features_from_history
from perennial.lifecycle.as_of_dependence import changed_customers
from perennial.lifecycle.day_query import DayQuery, score_profiles
from perennial.lifecycle.history import HistoryWriter
from perennial.lifecycle.profiles import as_of_instant
from perennial.lifecycle.purchase_days import PurchaseDays, purchase_days
from perennial.lifecycle.rfm_config import RfmConfig
from perennial.lifecycle.stage_model import StageModel
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot, Warehouse

__all__ = ["BackfillResult", "StageDay", "backfill", "daily_profiles"]

_CHUNK_DAYS = 31
"""Days whose changed customers are found in one query."""


@dataclass(frozen=True)
class StageDay:
    """One day of the history: every known customer's profile as of the end of ``day``."""

    day: date
    as_of: datetime
    profiles: pa.Table
    """Features, RFM, value tier, ``stage`` and ``stage_rank``: the columns of build_profiles."""
    transitions: pa.Table
    """``customer_id``, ``from_stage``, ``to_stage`` of the customers whose stage changed."""
    recomputed: int
    """Customers with fresh features (whole rows or windows); the rest were carried over."""


@dataclass(frozen=True)
class BackfillResult:
    model: str
    start: date
    end: date
    stage_rows: int
    transitions: int
    recomputed: int
    version: int
    """The warehouse version that holds the new range."""


@dataclass(frozen=True)
class _Eve:
    """What day D needs of day D-1."""

    as_of: datetime
    profiles: pa.Table
    rhythm: RhythmPopulation


def daily_profiles(
    backend: Backend,
    snapshot: Snapshot,
    model: StageModel,
    start: date,
    end: date,
    *,
    rfm_config: RfmConfig | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> Iterator[StageDay]:
    """Every day from ``start`` to ``end`` (inclusive), computed by the module's method.

    Days are calendar days in ``timezone`` (also the features' zone), each as of its
    end. Yields lazily: a caller writes or drops each day before the next is made.
    """
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    eve_as_of = as_of_instant((start - timedelta(days=1)).isoformat(), timezone)
    history = load_history(backend, snapshot, eve_as_of, timezone=timezone)
    features = features_from_history(history)
    eve = _Eve(
        history.as_of,
        backend.to_pyarrow(score_profiles(features, model, rfm_config)),
        RhythmPopulation.from_counts(backend.to_pyarrow(gap_counts(history))),
    )
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    with DayQuery(backend, snapshot, model, rfm_config, history) as query:
        for first in range(0, len(days), _CHUNK_DAYS):
            chunk = days[first : first + _CHUNK_DAYS]
            changed = backend.to_pyarrow(changed_customers(backend, snapshot, chunk, timezone))
            bought = _purchase_days(backend, snapshot, query, changed, chunk[-1], timezone)
            for day in chunk:
                on_day = changed.filter(pc.equal(changed.column("day"), pa.scalar(day)))
                stage_day, eve = _next_day(query, eve, day, timezone, on_day, bought)
                yield stage_day


def backfill(
    backend: Backend,
    snapshot: Snapshot,
    model: StageModel,
    start: date,
    end: date,
    *,
    rfm_config: RfmConfig | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    on_day: Callable[[StageDay], None] | None = None,
) -> BackfillResult:
    """Compute ``start``..``end`` and store it as the model's history for that range.

    The days are written to the warehouse of ``snapshot`` in one transaction that
    first removes the model's rows already stored for the range, so a re-run
    replaces and never duplicates. ``on_day`` is called after each day (progress).
    """
    stage_rows = transitions = recomputed = 0
    with HistoryWriter(Warehouse(snapshot.root), model.name) as writer:
        for stage_day in daily_profiles(
            backend, snapshot, model, start, end, rfm_config=rfm_config, timezone=timezone
        ):
            writer.add_day(stage_day.day, stage_day.profiles, stage_day.transitions)
            stage_rows += stage_day.profiles.num_rows
            transitions += stage_day.transitions.num_rows
            recomputed += stage_day.recomputed
            if on_day is not None:
                on_day(stage_day)
        version = writer.commit(start, end)
    return BackfillResult(model.name, start, end, stage_rows, transitions, recomputed, version)


def _next_day(
    query: DayQuery,
    eve: _Eve,
    day: date,
    timezone: str,
    changed: pa.Table,
    bought: PurchaseDays,
) -> tuple[StageDay, _Eve]:
    # In UTC: subtracting two datetimes of one zone would give wall-clock time (24 h
    # across a daylight-saving change).
    as_of = as_of_instant(day.isoformat(), timezone).astimezone(UTC)
    rhythm = RhythmPopulation({key: counts.copy() for key, counts in eve.rhythm.counts.items()})
    buyers = changed.filter(changed.column("new_purchases")).column("customer_id").to_pylist()
    rhythm.add(bought.gap_changes(buyers, eve.as_of, as_of))
    step = as_of - eve.as_of
    today = pa.table(
        {
            "as_of": pa.array([as_of], pa.timestamp("us", tz="UTC")),
            "step_microseconds": [step // timedelta(microseconds=1)],
            "population_median": pa.array([rhythm.population_median()], pa.float64()),
        }
    )
    ids = changed.select(["customer_id", "new_rows"])
    result = query.run(eve.profiles, ids, rhythm.medians_table(), today)
    moved = result.filter(result.column("stage_changed"))
    transitions = moved.select(["customer_id", "previous_stage", "stage"]).rename_columns(
        ["customer_id", "from_stage", "to_stage"]
    )
    profiles = result.select(list(query.columns))
    stage_day = StageDay(day, as_of, profiles, transitions, changed.num_rows)
    return stage_day, _Eve(as_of, profiles, rhythm)


def _purchase_days(
    backend: Backend,
    snapshot: Snapshot,
    query: DayQuery,
    changed: pa.Table,
    last_day: date,
    timezone: str,
) -> PurchaseDays:
    """The purchase days of everyone who buys during a chunk, as of its last day's end."""
    buyers = changed.filter(changed.column("new_purchases")).select(["customer_id"])
    history = load_history(
        backend, snapshot, as_of_instant(last_day.isoformat(), timezone), timezone=timezone
    )
    ids = query.table("buyers", buyers.group_by("customer_id").aggregate([]))
    items = backend.table("order_items", snapshot)
    return PurchaseDays(backend.to_pyarrow(purchase_days(history, items, ids)))
