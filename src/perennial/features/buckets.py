"""Features in bounded memory: one customer-hash bucket at a time, through Parquet on disk.

Why: :func:`~perennial.features.snapshot.compute_features` is one plan over every
order and event, and the engine holds the per-customer state of all of it at once.
At 100 M orders and 390 M events DuckDB outgrew its 14 GB limit on a 24 GB machine,
then its spill disk (``benchmarks/RESULTS.md``). Every feature but two depends on
the customer's own rows only, so customers split by a hash of their id can be
computed bucket by bucket, each in a fraction of the memory. The two population
columns are medians of purchase gaps, which do not add up across buckets; but gaps
are whole days, so their histograms do (:mod:`perennial.features.rhythm_population`):
each bucket contributes its gap counts and the medians are laid over every row at
the end, exactly the values of the single plan.

How: one pass per source table writes the point-in-time rows, with anonymous
events already attributed, partitioned by bucket (a shuffle to local disk, what
Spark does between stages); then each bucket's features are computed from its own
partition and written out. Only the ``properties`` of event types a feature reads
(:data:`~perennial.features.activity.PROPERTIES_READ`) are kept, so the shuffled
events are a fraction of the stored ones. The engine's own spilling cannot do this:
the plan's operators all run at once and some of them cannot spill.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.activity import PROPERTIES_READ
from perennial.features.history import History, load_history
from perennial.features.rhythm_population import (
    RhythmPopulation,
    gap_counts,
    with_population_rhythm,
)
from perennial.features.snapshot import (
    DEFAULT_TIMEZONE,
    FEATURES,
    compute_features,
    features_from_history,
    typed_feature_table,
)
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "ROWS_PER_GIB",
    "bucket_of",
    "bucketed_features",
    "feature_table",
    "planned_buckets",
]

ROWS_PER_GIB = 5_000_000
"""Source rows (orders + order lines + events) one bucket may hold per GiB of engine
memory. Measured: the single plan over 65 M rows peaked at 7.2 GB of process memory
(about 9 M rows per GB); this leaves half of that as margin."""

_BUCKET = "feature_bucket"
_SOURCES = ("customers", "orders", "purchase_lines", "events")
_FEATURE_SCHEMA = ibis.schema({f.name: f.kind.ibis_type for f in FEATURES})


def planned_buckets(backend: Backend, snapshot: Snapshot, requested: int | None = None) -> int:
    """How many buckets: ``requested`` if given, else enough for the engine's memory.

    On DuckDB the source rows are divided by :data:`ROWS_PER_GIB` times the memory
    limit; Spark spreads its own work over executors, so it gets one bucket unless
    asked for more.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"feature buckets must be at least 1, got {requested}")
        return requested
    limit = backend.memory_limit_bytes()
    if limit is None:
        return 1
    rows = sum(snapshot.rows(table) for table in ("orders", "order_items", "events"))
    per_bucket = max(1, int(limit / 2**30 * ROWS_PER_GIB))
    return max(1, math.ceil(rows / per_bucket))


def bucket_of(customer_id: ir.StringValue, buckets: int) -> ir.IntegerValue:
    """The customer's bucket, 0 to ``buckets - 1``: a hash of the id (engine-specific,
    stable within a run, which is all the split needs)."""
    hashed = customer_id.hash()
    return ((hashed % buckets + buckets) % buckets).cast(dt.int32)


@contextmanager
def feature_table(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    workdir: Path,
    timezone: str = DEFAULT_TIMEZONE,
    buckets: int | None = None,
) -> Iterator[ir.Table]:
    """The features of :func:`compute_features`, in as many buckets as the store needs.

    One bucket is the plain lazy expression; more are :func:`bucketed_features`. Use
    the table inside the ``with`` block: bucket files are removed on leaving it.
    """
    count = planned_buckets(backend, snapshot, buckets)
    if count == 1:
        yield compute_features(backend, snapshot, as_of, timezone=timezone)
        return
    with bucketed_features(
        backend, snapshot, as_of, workdir=workdir, timezone=timezone, buckets=count
    ) as table:
        yield table


@contextmanager
def bucketed_features(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    workdir: Path,
    buckets: int,
    timezone: str = DEFAULT_TIMEZONE,
) -> Iterator[ir.Table]:
    """Features equal to :func:`compute_features`, computed ``buckets`` customers-sets at a time.

    Writes under a new folder in ``workdir`` and removes it on leaving the block; the
    yielded table reads the bucket results from there.
    """
    folder = workdir / f"features-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    medians_name = f"rhythm_{folder.name.replace('-', '_')}"
    registered = False
    try:
        history = load_history(backend, snapshot, as_of, timezone=timezone)
        _shuffle(backend, history, folder, buckets)
        rhythm = RhythmPopulation()
        for bucket in range(buckets):
            part = _bucket_history(backend, history, folder, bucket)
            features = features_from_history(part, with_population=False)
            backend.write_parquet(features, folder / "features" / str(bucket))
            rhythm.add(backend.to_pyarrow(gap_counts(part)))
        medians = backend.register_arrow(medians_name, rhythm.medians_table())
        registered = True
        yield _with_population(backend, history, folder, medians, rhythm)
    finally:
        if registered:
            backend.unregister_arrow(medians_name)
        shutil.rmtree(folder, ignore_errors=True)


def _shuffle(backend: Backend, history: History, folder: Path, buckets: int) -> None:
    """Each point-in-time source table, partitioned by bucket under ``folder/<source>``."""
    events = history.events
    kept = events.event_type.isin(PROPERTIES_READ)
    sources = {
        "customers": history.customers,
        "orders": history.orders,
        "purchase_lines": history.purchase_lines,
        "events": events.mutate(properties=ibis.ifelse(kept, events.properties, None)),
    }
    for name, table in sources.items():
        partitioned = table.mutate(**{_BUCKET: bucket_of(table.customer_id, buckets)})
        backend.write_parquet(partitioned, folder / name, partition_by=_BUCKET)


def _bucket_history(backend: Backend, history: History, folder: Path, bucket: int) -> History:
    """``history`` restricted to one bucket's customers, read from the shuffled files."""
    tables = {
        name: backend.read_parquet(
            folder / name / f"{_BUCKET}={bucket}", getattr(history, name).schema()
        )
        for name in _SOURCES
    }
    return replace(history, **tables)


def _with_population(
    backend: Backend, history: History, folder: Path, medians: ir.Table, rhythm: RhythmPopulation
) -> ir.Table:
    """Every bucket's rows with the store-wide rhythm medians and expected next order."""
    features = backend.read_parquet(folder / "features", _FEATURE_SCHEMA)
    population = ibis.literal(rhythm.population_median(), type=dt.float64)
    table = features.mutate(_population_median=population)
    table = with_population_rhythm(
        table, medians, population_median="_population_median", as_of="as_of", reference=history
    )
    return typed_feature_table(table)
