"""Feature, RFM and BTYD speed: perennial against hand-written DuckDB, pandas, Polars, lifetimes.

The store is built once per size from the demo generator (``generate_demo(customers=N,
seed=7)``, about 6 orders and 23 events per customer) and ingested with
``ingest_file`` into ``--data-dir`` (git-ignored); later runs reuse it. Every
measurement then runs in its own fresh interpreter over that store's Parquet files,
with 2 threads everywhere, ``as_of`` = 2026-01-01 00:00 UTC (the end of the demo
period) and local days in Asia/Shanghai:

* ours, RFM: ``score_rfm(compute_features(...))`` (every feature, then the scores), and
  RFM alone, ``build_rfm`` (one pass over the paid orders for recency / frequency /
  monetary / first / last, then ``score_rfm``), and the aggregates alone
  (``features.orders.rfm_inputs``: exactly what the SQL and Polars peers compute);
* ours, all features (``compute_features``) and profiles (``build_profiles``: features +
  RFM + value tier + stage, seed000 model), each ``-> backend.to_pyarrow``;
* ours, ``summary_for_btyd(..., unit_days=1)``;
* peers: one hand-written DuckDB SQL query (recency, frequency, monetary, first and last
  paid order per customer); the same aggregates in pandas (pyarrow read -> pandas ->
  groupby) and in Polars (lazy scan); every feature of ``compute_features`` in idiomatic
  pandas; ``lifetimes.utils.summary_data_from_transaction_data`` (freq ``D``, with a
  time limit);
* Spark local mode (``open_backend(settings, "spark")``, ``local[2]``): profiles on the
  small store (``--spark-customers``), next to ours on DuckDB on the same store.

Times cover the work after imports (reading the Parquet files included); peak RSS is
the process's VmHWM (imports included; for Spark, plus the JVM's). After the runs every
peer's output is compared with ours, customer by customer, and any difference fails
the run, so no side is fast because it computes less. Results: ``benchmarks/RESULTS.md``.

    .tools/bin/uv pip install --python .venv/bin/python lifetimes pandas   # peers
    .venv/bin/python benchmarks/bench_features.py --customers 170000        # ~1 M orders
    .venv/bin/python benchmarks/bench_features.py                           # ~10 M orders
    .venv/bin/python benchmarks/bench_features.py --phases                  # + where ours spends

``--phases`` adds one instrumented run of ours (never a timed one): each part of the
feature query executed on its own, RFM + tier + stage on already computed features,
and DuckDB's operator profile of the whole profile query.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_ingest import _cpu_seconds, _describe_source, _peak_rss_mb, _perennial_package

_PROCESS_STARTED = time.perf_counter()

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DEFAULT_DATA_DIR = ROOT / "data"
THREADS = 2
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
"""The end of the demo period (its last orders are on 2025-12-31 UTC)."""
TIMEZONE = "Asia/Shanghai"
LAST_LOCAL_DAY = "2026-01-01"
"""The local day (Asia/Shanghai) of the last instant before AS_OF: lifetimes' period end."""
INGEST_NOW = datetime(2026, 11, 23, tzinfo=UTC)
STAGE_MODEL = REPO / "examples" / "lifecycle" / "seed000.yaml"
SEED = 7
DATA_VERSION = "f1"
"""Part of the cached stores' folder names: bump it when the generator or ingest changes."""

TARGET_RFM_VS_SQL = 1.5
TARGET_FULL_VS_PANDAS = 5.0
TARGET_BTYD_VS_LIFETIMES = 20.0

COUNTED_EVENTS = {
    "login": "logins",
    "page_view": "page_views",
    "add_to_cart": "add_to_carts",
    "search": "searches",
    "coupon_redeemed": "coupon_redemptions",
    "complaint": "complaints",
    "refund_request": "refund_requests",
}
WINDOWS = (1, 7, 30, 90)
HELP_TERMS = (
    "cancel",
    "unsubscribe",
    "export",
    "delete account",
    "delete my account",
    "注销",
    "退订",
    "导出",
)
QUERY_PATTERN = r'"query":"((?:[^"\\]|\\.)*)"'
RFM_AGGREGATES = ("recency_days", "frequency_orders", "monetary_total", "first_order_at")
RFM_AGGREGATES += ("last_order_at",)


# --------------------------------------------------------------------------- the store


def store_dir(data_dir: Path, customers: int) -> Path:
    return data_dir / f"features-{DATA_VERSION}-{customers}c-s{SEED}"


def prepare(data_dir: Path, customers: int) -> dict[str, Any]:
    """Child: generate the demo files and ingest them into ``<store>/home``, once."""
    from perennial.config import Settings
    from perennial.demo import generate_demo
    from perennial.ingest.pipeline import ingest_file

    root = store_dir(data_dir, customers)
    shutil.rmtree(root, ignore_errors=True)
    source = root / "source"
    started = time.perf_counter()
    dataset = generate_demo(source, customers=customers, seed=SEED)
    generated = time.perf_counter() - started
    print(
        f"  generated {dataset.orders:,} orders, {dataset.events:,} events in {generated:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    settings = Settings(home=root / "home", duckdb_threads=THREADS)
    reports = []
    started = time.perf_counter()
    for demo_file in dataset.files:
        report = ingest_file(demo_file.path, settings, table=demo_file.table, now=INGEST_NOW)
        reports.append(
            {
                "file": demo_file.path.name,
                "table": demo_file.table,
                "accepted": report.accepted,
                "quarantined": report.quarantined,
                "seconds": round(report.seconds, 2),
            }
        )
        print(f"  ingested {reports[-1]}", file=sys.stderr, flush=True)
    ingested = time.perf_counter() - started
    shutil.rmtree(source)  # regenerated byte for byte from (customers, seed) when needed
    info = {
        "customers": customers,
        "seed": SEED,
        "generate_seconds": generated,
        "ingest_seconds": ingested,
        "ingest": reports,
        **store_counts(settings),
    }
    (root / "store.json").write_text(json.dumps(info, indent=2))
    return info


def store_counts(settings: Any) -> dict[str, int]:
    import duckdb

    from perennial.store.warehouse import Warehouse

    snapshot = Warehouse(settings.warehouse).snapshot()
    con = duckdb.connect(config={"threads": THREADS})
    counts = {}
    for table in ("customers", "orders", "order_items", "events"):
        counts[f"{table}_rows"] = int(
            con.execute(
                "SELECT count(*) FROM read_parquet(?, hive_partitioning = false)",
                [snapshot.paths(table)],
            ).fetchall()[0][0]
        )
    con.close()
    return counts


# --------------------------------------------------------------------------- one measurement


class Clock:
    """Wall and CPU time from construction to :meth:`stop`, and the peak RSS at the stop.

    ``setup_seconds`` is what came before the clock in this process (imports, settings).
    """

    def __init__(self) -> None:
        self.cpu = _cpu_seconds()
        self.started = time.perf_counter()

    def stop(self, rows_out: int, **extra: Any) -> dict[str, Any]:
        return {
            "seconds": time.perf_counter() - self.started,
            "setup_seconds": self.started - _PROCESS_STARTED,
            "cpu_seconds": _cpu_seconds() - self.cpu,
            "peak_rss_mb": _peak_rss_mb(),
            "rows_out": rows_out,
            **extra,
        }


@dataclass
class Context:
    home: Path
    out: Path
    """Where the child writes its result table (after the clock stopped), for the checks."""
    memory_limit: str | None = None
    """DuckDB ``memory_limit`` for ours and the SQL peer; None: each side's default."""
    feature_buckets: int | None = None
    """``Settings.feature_buckets`` for ours; None: planned from the memory limit."""

    @property
    def settings(self) -> Any:
        from perennial.config import Settings

        limit = {"duckdb_memory_limit": self.memory_limit} if self.memory_limit else {}
        return Settings(
            home=self.home,
            duckdb_threads=THREADS,
            feature_buckets=self.feature_buckets,
            **limit,
        )

    def order_paths(self) -> list[str]:
        return self.paths("orders")

    def paths(self, table: str) -> list[str]:
        from perennial.store.warehouse import Warehouse

        return Warehouse(self.settings.warehouse).snapshot().paths(table)

    def save(self, table: Any) -> None:
        """Write an Arrow table, a pandas or a Polars frame as Parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if hasattr(table, "to_arrow"):  # polars
            table = table.to_arrow()
        elif not isinstance(table, pa.Table):  # pandas
            table = pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(table, self.out)


def _import_ours(engine: str = "duckdb") -> None:
    """Import what perennial loads lazily on first use (Ibis's backend and its pandas
    converter), so that import time stays out of the clock as it does for the peers."""
    import importlib

    importlib.import_module(f"ibis.backends.{'duckdb' if engine == 'duckdb' else 'pyspark'}")
    if engine == "duckdb":
        importlib.import_module("ibis.backends.duckdb.converter")
    else:
        importlib.import_module("pyspark.sql")


def _limit_threads() -> None:
    import pyarrow as pa

    pa.set_cpu_count(THREADS)
    pa.set_io_thread_count(THREADS)


# ----- ours


def ours_rfm(ctx: Context) -> dict[str, Any]:
    """``score_rfm(compute_features(...))``: every feature, then the R, F, M scores."""
    from perennial.features.snapshot import compute_features
    from perennial.lifecycle.rfm import score_rfm
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        features = compute_features(backend, snapshot, AS_OF, timezone=TIMEZONE)
        table = backend.to_pyarrow(score_rfm(features))
    result = clock.stop(table.num_rows)
    ctx.save(table)
    return result


def ours_rfm_minimal(ctx: Context) -> dict[str, Any]:
    """RFM alone, the library's entry point: ``build_rfm`` (paid-order aggregates + scores)."""
    from perennial.lifecycle.profiles import build_rfm
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        table = backend.to_pyarrow(build_rfm(backend, snapshot, AS_OF, timezone=TIMEZONE))
    result = clock.stop(table.num_rows)
    ctx.save(table)
    return result


def ours_rfm_aggregates(ctx: Context) -> dict[str, Any]:
    """What the peers compute and nothing more: ``features.orders.rfm_inputs`` (recency,
    frequency, monetary, first and last paid order per buyer), the aggregates that
    ``build_rfm`` scores. The like-for-like comparison with the SQL and Polars peers."""
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        table = backend.to_pyarrow(_rfm_inputs(backend, snapshot))
    result = clock.stop(table.num_rows)
    ctx.save(table)
    return result


def _rfm_inputs(backend: Any, snapshot: Any) -> Any:
    """Recency, frequency, monetary, first and last paid order of customers with one."""
    from perennial.features import orders
    from perennial.features.history import load_history

    return orders.rfm_inputs(load_history(backend, snapshot, AS_OF, timezone=TIMEZONE))


def ours_features(ctx: Context) -> dict[str, Any]:
    """``feature_table`` -> Arrow: every registered feature, nothing else, the way the
    CLI computes them (one plan, or customer-hash buckets when the store needs them)."""
    from perennial.features.buckets import planned_buckets
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        buckets = planned_buckets(backend, snapshot, settings.feature_buckets)
        with _features(settings, backend, snapshot, buckets) as features:
            table = backend.to_pyarrow(features)
    result = clock.stop(table.num_rows, buckets=buckets)
    ctx.save(table)
    return result


def _features(settings: Any, backend: Any, snapshot: Any, buckets: int) -> Any:
    from perennial.features.buckets import feature_table

    return feature_table(
        backend, snapshot, AS_OF, workdir=settings.home / "tmp", timezone=TIMEZONE, buckets=buckets
    )


def ours_profiles(ctx: Context) -> dict[str, Any]:
    """``build_profiles`` (features + RFM + value tier + stage) -> a Parquet file, on DuckDB,
    over the features of ``feature_table``: what ``perennial lifecycle compute`` stores
    (17 M profiles do not fit in memory as Arrow beside the engine)."""
    import pyarrow.parquet as pq

    from perennial.features.buckets import planned_buckets
    from perennial.lifecycle.profiles import build_profiles
    from perennial.lifecycle.stage_model import load_stage_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    model = load_stage_model(STAGE_MODEL)
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        buckets = planned_buckets(backend, snapshot, settings.feature_buckets)
        staged = ctx.out.with_name(ctx.out.stem + "-rows")
        with _features(settings, backend, snapshot, buckets) as features:
            expression = build_profiles(
                backend, snapshot, AS_OF, model, timezone=TIMEZONE, features=features
            )
            backend.write_parquet(expression, staged)
    written = staged / "part-0.parquet"
    result = clock.stop(pq.ParquetFile(written).metadata.num_rows, buckets=buckets)
    written.replace(ctx.out)
    staged.rmdir()
    return result


def ours_btyd(ctx: Context) -> dict[str, Any]:
    """``summary_for_btyd(..., unit_days=1)`` -> Arrow."""
    from perennial.features.btyd import summary_for_btyd
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        expression = summary_for_btyd(backend, snapshot, AS_OF, unit_days=1, timezone=TIMEZONE)
        table = backend.to_pyarrow(expression)
    result = clock.stop(table.num_rows)
    ctx.save(table)
    return result


def spark_profiles(ctx: Context) -> dict[str, Any]:
    """``build_profiles`` on a local Spark session (``local[2]``): a cold and a warm run."""
    from perennial.lifecycle.profiles import build_profiles
    from perennial.lifecycle.stage_model import load_stage_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours("spark")
    settings = ctx.settings
    model = load_stage_model(STAGE_MODEL)
    started = time.perf_counter()
    backend = open_backend(settings, "spark")
    session_seconds = time.perf_counter() - started
    try:
        snapshot = Warehouse(settings.warehouse).snapshot()
        clock = Clock()
        expression = build_profiles(backend, snapshot, AS_OF, model, timezone=TIMEZONE)
        table = backend.to_pyarrow(expression)
        result = clock.stop(table.num_rows)
        warm = time.perf_counter()
        backend.to_pyarrow(build_profiles(backend, snapshot, AS_OF, model, timezone=TIMEZONE))
        result["warm_seconds"] = time.perf_counter() - warm
        result["session_seconds"] = session_seconds
        result["python_peak_rss_mb"] = result["peak_rss_mb"]
        result["jvm_peak_rss_mb"] = _descendants_peak_mb()
        result["peak_rss_mb"] += result["jvm_peak_rss_mb"]
    finally:
        backend.close()
    ctx.save(table)
    return result


def _descendants_peak_mb() -> float:
    """Sum of VmHWM over this process's descendants (the Spark JVM), in MiB."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - family
        family |= frontier
    total = 0.0
    for pid in family:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


# ----- peers


PEER_SQL = """
SELECT customer_id,
       (epoch_us(TIMESTAMPTZ '2026-01-01 00:00:00+00') - epoch_us(max(placed_at)))
           / 86400e6 AS recency_days,
       count(*) AS frequency_orders,
       sum(amount)::DOUBLE AS monetary_total,
       min(placed_at) AS first_order_at,
       max(placed_at) AS last_order_at
FROM read_parquet(?, hive_partitioning = false)
WHERE status = 'paid' AND placed_at < TIMESTAMPTZ '2026-01-01 00:00:00+00'
GROUP BY customer_id
"""


def sql_rfm(ctx: Context) -> dict[str, Any]:
    """One hand-written DuckDB query over the store's order files -> Arrow."""
    import duckdb

    paths = ctx.order_paths()
    clock = Clock()
    config: dict[str, Any] = {"threads": THREADS}
    if ctx.memory_limit:
        config["memory_limit"] = ctx.memory_limit
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    table = con.sql(PEER_SQL, params=[paths]).to_arrow_table()
    con.close()
    result = clock.stop(table.num_rows)
    ctx.save(table)
    return result


def pandas_rfm(ctx: Context) -> dict[str, Any]:
    """pyarrow read -> pandas -> filter -> one groupby with named aggregations."""
    import pandas as pd

    _limit_threads()
    paths = ctx.order_paths()
    as_of = pd.Timestamp(AS_OF)
    clock = Clock()
    orders = _read_pandas(paths, ["customer_id", "placed_at", "amount", "status"])
    read_seconds = time.perf_counter() - clock.started
    paid = orders[(orders.status == "paid") & (orders.placed_at < as_of)]
    frame = paid.groupby("customer_id", as_index=False).agg(
        frequency_orders=("placed_at", "size"),
        monetary_total=("amount", "sum"),
        first_order_at=("placed_at", "min"),
        last_order_at=("placed_at", "max"),
    )
    frame["recency_days"] = (as_of - frame.last_order_at) / pd.Timedelta(days=1)
    result = clock.stop(len(frame), read_seconds=read_seconds)
    ctx.save(frame)
    return result


def polars_rfm(ctx: Context) -> dict[str, Any]:
    """Polars lazy scan of the same files -> filter -> group_by -> collect."""
    import polars as pl

    paths = ctx.order_paths()
    clock = Clock()
    frame = (
        pl.scan_parquet(paths, hive_partitioning=False)
        .filter((pl.col("status") == "paid") & (pl.col("placed_at") < AS_OF))
        .group_by("customer_id")
        .agg(
            frequency_orders=pl.len(),
            monetary_total=pl.col("amount").sum().cast(pl.Float64),
            first_order_at=pl.col("placed_at").min(),
            last_order_at=pl.col("placed_at").max(),
        )
        .with_columns(
            recency_days=(pl.lit(AS_OF) - pl.col("last_order_at")).dt.total_microseconds()
            / 86_400e6
        )
        .collect()
    )
    result = clock.stop(frame.height)
    ctx.save(frame)
    return result


def _read_pandas(paths: list[str], columns: list[str], filters: Any = None) -> Any:
    """Parquet files -> pandas via pyarrow; decimals as float64 (not Python Decimal objects)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(paths, columns=columns, partitioning=None, filters=filters)
    for index, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            table = table.set_column(index, column.name, pc.cast(table.column(index), pa.float64()))
    return table.to_pandas()


def pandas_features(ctx: Context) -> dict[str, Any]:
    """Every feature of ``compute_features``, written the way an analyst would in pandas."""
    _limit_threads()
    paths = {t: ctx.paths(t) for t in ("customers", "orders", "order_items", "events")}
    clock = Clock()
    frame, phases = _pandas_feature_frame(paths)
    result = clock.stop(len(frame), phases=phases)
    ctx.save(frame)
    return result


def _pandas_feature_frame(paths: dict[str, list[str]]) -> tuple[Any, dict[str, float]]:
    import numpy as np
    import pandas as pd

    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    as_of = pd.Timestamp(AS_OF)
    day = pd.Timedelta(days=1)

    def ago(days: int) -> pd.Timestamp:
        return as_of - pd.Timedelta(days=days)

    # --- orders: totals, windows, trends (one groupby over masks)
    orders = _read_pandas(
        paths["orders"], ["order_id", "customer_id", "placed_at", "amount", "status", "coupon_code"]
    )
    orders = orders[orders.placed_at < as_of]
    phase("read orders")
    orders["local_day"] = (
        orders.placed_at.dt.tz_convert(TIMEZONE).dt.tz_localize(None).dt.floor("D")
    )
    any_status = (
        orders.assign(refunded=orders.status == "refunded")
        .groupby("customer_id")
        .agg(_first_any_order=("placed_at", "min"), refunded_orders=("refunded", "sum"))
    )
    paid = orders[orders.status == "paid"]
    recent = paid.placed_at >= ago(30)
    earlier = (paid.placed_at >= ago(60)) & ~recent
    paid = paid.assign(
        coupon=paid.coupon_code.notna() & (paid.coupon_code != ""),
        spend_30d=paid.amount.where(recent, 0.0),
        spend_prev_30d=paid.amount.where(earlier, 0.0),
        orders_prev_30d=earlier,
        **{f"orders_{n}d": paid.placed_at >= ago(n) for n in WINDOWS},
    )
    features = paid.groupby("customer_id").agg(
        first_order_at=("placed_at", "min"),
        last_order_at=("placed_at", "max"),
        frequency_orders=("placed_at", "size"),
        frequency_days=("local_day", "nunique"),
        monetary_total=("amount", "sum"),
        monetary_max=("amount", "max"),
        coupons=("coupon", "sum"),
        spend_30d=("spend_30d", "sum"),
        spend_prev_30d=("spend_prev_30d", "sum"),
        orders_prev_30d=("orders_prev_30d", "sum"),
        **{f"orders_{n}d": (f"orders_{n}d", "sum") for n in WINDOWS},
    )
    features["recency_days"] = (as_of - features.last_order_at) / day
    features["monetary_mean"] = features.monetary_total / features.frequency_orders
    features["coupon_share"] = features.coupons / features.frequency_orders
    features["orders_trend_30d"] = features.orders_30d / features.orders_prev_30d.replace(0, np.nan)
    features["spend_trend_30d"] = features.spend_30d / features.spend_prev_30d.replace(0.0, np.nan)
    phase("orders: totals, windows, trends")

    # --- purchase rhythm: diff of sorted distinct purchase days
    days = paid[["customer_id", "local_day"]].drop_duplicates()
    days = days.sort_values(["customer_id", "local_day"])
    days["gap"] = days.groupby("customer_id").local_day.diff() / day
    gaps = days.dropna(subset=["gap"])
    own = gaps.groupby("customer_id").gap.agg(
        own_mean_interval_days="mean", own_median_interval_days="median"
    )
    population_median = gaps.gap.median()
    phase("own intervals")

    items = _read_pandas(paths["order_items"], ["order_id", "placed_at", "category", "quantity"])
    items = items[(items.placed_at < as_of) & items.category.notna()]
    lines = items.merge(paid[["order_id", "customer_id", "local_day"]], on="order_id")
    units = lines.groupby(["customer_id", "category"], as_index=False).quantity.sum()
    favourite = units.sort_values(
        ["customer_id", "quantity", "category"], ascending=[True, False, True]
    ).drop_duplicates("customer_id")
    category_days = lines[["customer_id", "category", "local_day"]].drop_duplicates()
    category_days = category_days.sort_values(["customer_id", "category", "local_day"])
    category_days["gap"] = category_days.groupby(["customer_id", "category"]).local_day.diff() / day
    category_median = category_days.groupby("category").gap.median()
    favourite = favourite.set_index("customer_id")[["category"]].rename(
        columns={"category": "favourite_category"}
    )
    favourite["category_median_interval_days"] = favourite.favourite_category.map(category_median)
    phase("favourite category and category intervals")

    # --- events: attribute anonymous ones, counts per type and window
    events = _read_pandas(paths["events"], ["customer_id", "anonymous_id", "event_type", "ts"])
    events = events[events.ts < as_of]
    phase("read events")
    both = events[events.customer_id.notna() & events.anonymous_id.notna()]
    links = (
        both.groupby(["anonymous_id", "customer_id"], as_index=False)
        .ts.min()
        .sort_values(["anonymous_id", "ts", "customer_id"])
        .drop_duplicates("anonymous_id")[["anonymous_id", "customer_id"]]
    )

    def attribute(frame: pd.DataFrame) -> pd.DataFrame:
        anonymous = frame[frame.customer_id.isna()].drop(columns="customer_id")
        linked = anonymous.merge(links, on="anonymous_id")
        return pd.concat([frame[frame.customer_id.notna()], linked], ignore_index=True)

    events = attribute(events)
    phase("events: attribution")
    first_event = events.groupby("customer_id").ts.min().rename("_first_event")
    counted = events[events.event_type.isin(list(COUNTED_EVENTS))]
    masks = counted[["customer_id", "event_type"]].assign(
        prev_30d=(counted.ts >= ago(60)) & (counted.ts < ago(30)),
        **{f"w{n}": counted.ts >= ago(n) for n in WINDOWS},
    )
    counts = (
        masks.groupby(["customer_id", "event_type"])[[f"w{n}" for n in WINDOWS]]
        .sum()
        .unstack("event_type", fill_value=0)
    )
    counts.columns = [f"{COUNTED_EVENTS[kind]}_{w[1:]}d" for w, kind in counts.columns]
    logins = masks[masks.event_type == "login"].assign(ts=counted.ts)
    login = logins.groupby("customer_id").agg(
        last_login=("ts", "max"), logins_prev_30d=("prev_30d", "sum")
    )
    phase("events: window counts")

    searches = _read_pandas(
        paths["events"],
        ["customer_id", "anonymous_id", "ts", "properties"],
        filters=[("event_type", "==", "search")],
    )
    searches = attribute(searches[searches.ts < as_of])
    query = searches.properties.str.extract(QUERY_PATTERN, expand=False).str.lower()
    pattern = "|".join(map(_escape, HELP_TERMS))
    is_help = query.str.contains(pattern, regex=True).fillna(False).astype(bool)
    help_searches = (
        (is_help & (searches.ts >= ago(90))).groupby(searches.customer_id).sum().rename("help")
    )
    phase("events: help searches")

    # --- customers and assembly
    customers = _read_pandas(
        paths["customers"], ["customer_id", "created_at", "acquisition_channel"]
    )
    customers = customers[customers.created_at.isna() | (customers.created_at < as_of)]
    known = (
        pd.Index(customers.customer_id)
        .union(pd.Index(orders.customer_id.unique()))
        .union(pd.Index(events.customer_id.unique()))
    )
    out = pd.DataFrame(index=known.rename("customer_id"))
    out = out.join(customers.set_index("customer_id"))
    for part in (any_status, features, own, favourite, counts, login, first_event, help_searches):
        out = out.join(part)
    zero_counts = [
        "frequency_orders",
        "frequency_days",
        "refunded_orders",
        *(f"orders_{n}d" for n in WINDOWS),
        *counts.columns,
        "help",
    ]
    out[zero_counts] = out[zero_counts].fillna(0).astype("int64")
    out[["monetary_total", "spend_30d", "spend_prev_30d"]] = out[
        ["monetary_total", "spend_30d", "spend_prev_30d"]
    ].fillna(0.0)
    out["as_of"] = as_of
    out["first_seen_at"] = out[["created_at", "_first_any_order", "_first_event"]].min(axis=1)
    out["tenure_days"] = (as_of - out.first_seen_at) / day
    out["population_median_interval_days"] = population_median
    interval = out.own_median_interval_days.fillna(out.category_median_interval_days).fillna(
        population_median
    )
    out["expected_next_order_at"] = out.last_order_at + pd.to_timedelta(
        (interval * 86_400_000_000).round(), unit="us"
    )
    out["days_to_expected_order"] = (out.expected_next_order_at - as_of) / day
    out["days_since_last_login"] = (as_of - out.last_login) / day
    page_views = out.page_views_30d.replace(0, np.nan)
    out["browse_without_cart_ratio_30d"] = (1 - out.add_to_carts_30d / page_views).clip(0, 1)
    out["help_searches_90d"] = out.help
    out["logins_trend_30d"] = out.logins_30d / out.logins_prev_30d.replace(0, np.nan)
    out = out.reset_index()[list(PANDAS_COLUMNS)]
    phase("assemble")
    return out, phases


def _escape(term: str) -> str:
    import re

    return re.escape(term)


PANDAS_COLUMNS = (
    "customer_id",
    "as_of",
    "acquisition_channel",
    "first_seen_at",
    "tenure_days",
    "first_order_at",
    "last_order_at",
    "recency_days",
    "frequency_orders",
    "frequency_days",
    "refunded_orders",
    "monetary_total",
    "monetary_mean",
    "monetary_max",
    "coupon_share",
    *(f"orders_{n}d" for n in WINDOWS),
    "spend_30d",
    "spend_prev_30d",
    "own_mean_interval_days",
    "own_median_interval_days",
    "favourite_category",
    "category_median_interval_days",
    "population_median_interval_days",
    "expected_next_order_at",
    "days_to_expected_order",
    *(f"{plural}_{n}d" for plural in COUNTED_EVENTS.values() for n in WINDOWS),
    "days_since_last_login",
    "browse_without_cart_ratio_30d",
    "help_searches_90d",
    "orders_trend_30d",
    "spend_trend_30d",
    "logins_trend_30d",
)
"""What the pandas version computes, in the order of ``perennial``'s feature registry."""


def lifetimes_summary(ctx: Context) -> dict[str, Any]:
    """``lifetimes.utils.summary_data_from_transaction_data`` on the paid orders, freq ``D``.

    Input: paid orders before ``as_of`` (customer_id, placed_at as local Asia/Shanghai
    time, amount). ``seconds`` is the call alone; ``read_seconds`` the read and preparation.
    """
    import warnings

    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    _limit_threads()
    paths = ctx.order_paths()
    started = time.perf_counter()
    orders = _read_pandas(paths, ["customer_id", "placed_at", "amount", "status"])
    orders = orders[(orders.status == "paid") & (orders.placed_at < pd.Timestamp(AS_OF))]
    orders = orders.drop(columns="status")
    orders["placed_at"] = orders.placed_at.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    read_seconds = time.perf_counter() - started
    clock = Clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summary_data_from_transaction_data(
            orders,
            "customer_id",
            "placed_at",
            monetary_value_col="amount",
            observation_period_end=LAST_LOCAL_DAY,
            freq="D",
        )
    result = clock.stop(len(summary), read_seconds=read_seconds, rows_in=len(orders))
    ctx.save(summary.reset_index())
    return result


MEASUREMENTS: dict[str, tuple[Callable[[Context], dict[str, Any]], str]] = {
    "sql_rfm": (sql_rfm, "peer: hand-written DuckDB SQL, RFM aggregates"),
    "polars_rfm": (polars_rfm, "peer: Polars lazy scan, RFM aggregates"),
    "pandas_rfm": (pandas_rfm, "peer: pandas groupby, RFM aggregates"),
    "ours_rfm_aggregates": (ours_rfm_aggregates, "ours: rfm_inputs (the RFM aggregates alone)"),
    "ours_rfm_minimal": (ours_rfm_minimal, "ours: build_rfm (RFM aggregates + scores, segment)"),
    "ours_rfm": (ours_rfm, "ours: score_rfm(compute_features(...))"),
    "ours_features": (ours_features, "ours: compute_features (all features)"),
    "ours_profiles": (
        ours_profiles,
        "ours: build_profiles (features + RFM + tier + stage) -> Parquet",
    ),
    "pandas_features": (pandas_features, "peer: pandas, all features"),
    "ours_btyd": (ours_btyd, "ours: summary_for_btyd(unit_days=1)"),
    "lifetimes": (lifetimes_summary, "peer: lifetimes summary_data_from_transaction_data"),
    "spark_profiles": (spark_profiles, "ours on Spark local[2]: build_profiles"),
}


# --------------------------------------------------------------------------- phases of ours


def phases(ctx: Context) -> dict[str, Any]:
    """Instrumented run: each part of the profile query alone, then DuckDB's operator profile."""
    import ibis  # type: ignore[import-untyped]

    from perennial.features import activity, intervals, orders, trends
    from perennial.features.history import load_history
    from perennial.features.snapshot import compute_features
    from perennial.lifecycle.profiles import build_profiles
    from perennial.lifecycle.rfm import score_rfm
    from perennial.lifecycle.stage_model import assign_stage, load_stage_model
    from perennial.lifecycle.tiers import assign_value_tiers
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_ours()
    settings = ctx.settings
    model = load_stage_model(STAGE_MODEL)
    parts: dict[str, float] = {}
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        started = time.perf_counter()
        history = load_history(backend, snapshot, AS_OF, timezone=TIMEZONE)
        parts["load_history (views over the files, checks; Python)"] = time.perf_counter() - started
        started = time.perf_counter()
        backend.to_pyarrow(history.orders.limit(1))
        parts["first query (one order row: first compile, first file open)"] = (
            time.perf_counter() - started
        )
        rhythm = intervals.interval_tables(history)
        pieces = {
            "RFM minimal path: the order aggregates alone": _rfm_inputs(backend, snapshot),
            "RFM minimal path: aggregates + score_rfm": score_rfm(_rfm_inputs(backend, snapshot)),
            "orders: group by customer (purchase + order trend aggregates)": (
                history.orders.group_by("customer_id").aggregate(
                    **orders.order_aggregates(history), **trends.order_trend_aggregates(history)
                )
            ),
            "events: attribution + per type + pivot (activity + login trend)": (
                activity.event_rows(history)
            ),
            "own intervals (distinct days, lag, mean/median)": rhythm.own,
            "favourite category + category medians (order_items join)": rhythm.favourite,
            "population median interval": rhythm.population_median.name("m").as_table(),
        }
        for name, expression in pieces.items():
            started = time.perf_counter()
            backend.to_pyarrow(expression)
            parts[name] = time.perf_counter() - started

        started = time.perf_counter()
        features = compute_features(backend, snapshot, AS_OF, timezone=TIMEZONE)
        sql = backend.connection.compile(build_profiles(backend, snapshot, AS_OF, model))
        parts["build the Ibis expressions + compile to SQL"] = time.perf_counter() - started
        started = time.perf_counter()
        computed = backend.to_pyarrow(features)
        parts["all features together (compute_features)"] = time.perf_counter() - started
        started = time.perf_counter()
        on_top = assign_stage(model, assign_value_tiers(score_rfm(ibis.memtable(computed))))
        backend.to_pyarrow(on_top)
        parts["RFM + tier + stage on computed features (in memory)"] = time.perf_counter() - started

        profile_file = ctx.out.with_suffix(".profile.json")
        con = backend.connection.con
        con.execute("SET enable_profiling = 'json'")
        con.execute(f"SET profiling_output = '{profile_file}'")
        started = time.perf_counter()
        con.sql(sql).to_arrow_table()
        parts["whole profile query with DuckDB profiling on"] = time.perf_counter() - started
        con.execute("SET enable_profiling = 'no_output'")
    return {"parts": parts, "operators": _top_operators(json.loads(profile_file.read_text()))}


def _top_operators(profile: dict[str, Any], top: int = 15) -> dict[str, Any]:
    """Operator time (summed over threads) by operator type, and the slowest operators."""
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if "type" in node or "operator_type" in node:
            nodes.append(node)
        for child in node.get("children", []):
            walk(child)

    for root in profile.get("operator", [profile]):
        walk(root)

    def timing(node: dict[str, Any]) -> float:
        return float(node.get("timing", node.get("operator_timing", 0.0)))

    by_type: dict[str, float] = {}
    for node in nodes:
        kind = node.get("type", node.get("operator_type", "?"))
        by_type[kind] = by_type.get(kind, 0.0) + timing(node)
    slowest = sorted(nodes, key=timing, reverse=True)[:top]
    system = profile.get("system", {})
    return {
        "peak_buffer_memory_mb": system.get("peak_buffer_memory", 0) / 2**20,
        "peak_temp_dir_mb": system.get("peak_temp_dir_size", 0) / 2**20,
        "bytes_written_mb": profile.get("io", {}).get("total_bytes_written", 0) / 2**20,
        "query_seconds": profile.get("query", {}).get("total_time", profile.get("latency")),
        "cpu_seconds": profile.get("query", {}).get("cpu_time", profile.get("cpu_time")),
        "by_type": dict(sorted(by_type.items(), key=lambda item: -item[1])),
        "slowest": [
            {
                "type": node.get("type", node.get("operator_type")),
                "seconds": timing(node),
                "rows": node.get("intermediate_rows", node.get("operator_cardinality")),
                "info": _short_info(node.get("extra_info", {})),
            }
            for node in slowest
        ],
    }


def _short_info(info: Any) -> str:
    if isinstance(info, dict):
        keys = ("Table", "Function", "Groups", "Aggregates", "Join Type", "Conditions")
        text = "; ".join(f"{k}: {info[k]}" for k in keys if k in info)
    else:
        text = str(info)
    text = " ".join(text.split())
    return text[:110] + ("..." if len(text) > 110 else "")


def run_one(args: argparse.Namespace) -> int:
    """Child process: one measurement (or the store preparation), one JSON line on stdout."""
    if args.one == "prepare":
        result = prepare(args.data_dir, args.customers)
    else:
        ctx = Context(
            home=Path(args.home),
            out=Path(args.out),
            memory_limit=args.memory_limit,
            feature_buckets=args.feature_buckets,
        )
        if args.one == "phases":
            result = phases(ctx)
        else:
            result = MEASUREMENTS[args.one][0](ctx)
    result["final_peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result, default=str))
    return 0


# --------------------------------------------------------------------------- driver


@dataclass
class Store:
    customers: int
    root: Path
    info: dict[str, Any]

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def orders(self) -> int:
        return int(self.info["orders_rows"])


@dataclass
class Row:
    name: str
    store: Store
    runs: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    output: Path | None = None

    @property
    def seconds(self) -> float:
        return statistics.median(r["seconds"] for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r["peak_rss_mb"] for r in self.runs)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


class Child:
    """Runs ``--one`` children in fresh interpreters with the pinned source and 2 threads."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERENNIAL_")}
        env["PERENNIAL_CONFIG"] = os.devnull  # no perennial.toml from the working directory
        env["POLARS_MAX_THREADS"] = str(THREADS)
        env["OMP_NUM_THREADS"] = str(THREADS)
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        if args.source_copy is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(args.source_copy), env.get("PYTHONPATH", "")])
        self.env = env

    def run(
        self, kind: str, extra: Sequence[str], timeout: float | None = None
    ) -> tuple[dict[str, Any] | None, str | None]:
        command = [
            sys.executable, str(Path(__file__).resolve()), "--one", kind,
            "--data-dir", str(self.args.data_dir), *extra,
        ]  # fmt: skip
        if self.args.memory_limit:
            command += ["--memory-limit", self.args.memory_limit]
        if self.args.feature_buckets:
            command += ["--feature-buckets", str(self.args.feature_buckets)]
        try:
            done = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return None, f"did not finish in {timeout / 60:g} min"
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
            return None, f"failed (exit {done.returncode})"
        if done.stderr.strip():
            tail = [line for line in done.stderr.splitlines() if line.strip()][-3:]
            print("   stderr: " + " | ".join(tail)[:300], flush=True)
        return json.loads(done.stdout.strip().splitlines()[-1]), None


def ensure_store(child: Child, data_dir: Path, customers: int) -> Store:
    root = store_dir(data_dir, customers)
    info_file = root / "store.json"
    if not info_file.is_file():
        print(f"building the store for {customers:,} customers in {root} ...", flush=True)
        result, failure = child.run("prepare", ["--customers", str(customers)])
        if result is None:
            raise SystemExit(f"preparing the store failed: {failure}")
    info = json.loads(info_file.read_text())
    print(
        f"store {root.name}: {info['customers_rows']:,} customers, {info['orders_rows']:,} "
        f"orders, {info['order_items_rows']:,} order items, {info['events_rows']:,} events "
        f"(generated in {info['generate_seconds']:.0f} s, ingested in "
        f"{info['ingest_seconds']:.0f} s)",
        flush=True,
    )
    return Store(customers, root, info)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        return run_one(args)
    package = _perennial_package()
    args.source_copy = None
    args.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-features-", dir=args.data_dir))
    try:
        if not args.live_src:
            args.source_copy = scratch / "src"
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(package, args.source_copy / "perennial", ignore=ignore)
        print(f"code measured: {_describe_source(package, args.source_copy)}")
        print(f"as_of {AS_OF.isoformat()}, local days in {TIMEZONE}, {THREADS} threads everywhere")
        return _run_all(args, Child(args, scratch), scratch)
    finally:
        if not args.keep_outputs:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"outputs kept in {scratch}")


def _run_all(args: argparse.Namespace, child: Child, scratch: Path) -> int:
    kinds = [k for k in MEASUREMENTS if k in args.only] if args.only else list(MEASUREMENTS)
    main_store = ensure_store(child, args.data_dir, args.customers)
    small_store = None
    if args.spark_customers and ("spark_profiles" in kinds or "lifetimes" in kinds):
        small_store = (
            main_store
            if args.spark_customers == args.customers
            else ensure_store(child, args.data_dir, args.spark_customers)
        )
    results = _measure_all(args, child, scratch, _plan(kinds, main_store, small_store), small_store)
    print_table(results, args.repeat)
    print_targets(results, main_store)
    ok = check_outputs(results)
    if args.phases:
        print("\ninstrumented run of ours (phases; not a timed run) ...", flush=True)
        out = scratch / "phases.parquet"
        result, failure = child.run(
            "phases", ["--home", str(main_store.home), "--out", str(out)], args.timeout
        )
        if result is None:
            print(f"phases: {failure}")
        else:
            print_phases(result)
    if not ok:
        print("\nOUTPUT CHECKS FAILED: the comparison above is not honest until they pass")
        return 1
    return 0


def _plan(kinds: list[str], main_store: Store, small_store: Store | None) -> list[Row]:
    """One row per (measurement, store): Spark runs on the small store, beside ours there."""
    plan: list[Row] = []
    for kind in kinds:
        if kind != "spark_profiles":
            plan.append(Row(kind, main_store))
        elif small_store is not None:
            plan.append(Row(kind, small_store))
            if small_store is not main_store:
                plan.append(Row("ours_profiles", small_store))
    return plan


def _measure_all(
    args: argparse.Namespace,
    child: Child,
    scratch: Path,
    plan: list[Row],
    small_store: Store | None,
) -> list[Row]:
    """``--repeat`` rounds over the plan. When lifetimes runs out of time on the main store,
    it and our BTYD summary are measured on the small store instead (appended to the plan)."""
    for run in range(1, args.repeat + 1):
        for row in plan:  # may grow while iterating: the fallback rows run in this round
            if row.failure:
                continue
            measure(child, row, run, args, scratch)
            fallback_possible = small_store is not None and small_store is not row.store
            if row.name == "lifetimes" and row.failure and fallback_possible:
                assert small_store is not None  # for the type checker
                names = {(r.name, r.store.customers) for r in plan}
                for name in ("lifetimes", "ours_btyd"):
                    if (name, small_store.customers) not in names:
                        plan.append(Row(name, small_store))
    return plan


def measure(child: Child, row: Row, run: int, args: argparse.Namespace, scratch: Path) -> None:
    out = scratch / f"{row.name}-{row.store.customers}.parquet"
    timeout = args.lifetimes_timeout if row.name == "lifetimes" else args.timeout
    extra = ["--home", str(row.store.home), "--out", str(out)]
    result, failure = child.run(row.name, extra, timeout)
    label = f"{row.name} ({row.store.orders:,} orders) run {run}"
    if result is None:
        row.failure = failure
        print(f"{label}: {failure}", flush=True)
        return
    row.runs.append(result)
    row.output = out
    notes = [
        f"{k.rsplit('_', 1)[0]} {result[k]:,.2f} {'MB' if k.endswith('_mb') else 's'}"
        for k in _SECONDARY
        if k in result
    ]
    print(
        f"{label}: {result['seconds']:.2f} s (CPU {result['cpu_seconds']:.1f} s), "
        f"{result['rows_out']:,} rows out, peak RSS {result['peak_rss_mb']:,.0f} MB, "
        f"load {os.getloadavg()[0]:.2f}" + (f"; {', '.join(notes)}" if notes else ""),
        flush=True,
    )
    if "phases" in result:
        print("   " + ", ".join(f"{k} {v:.2f}" for k, v in result["phases"].items()), flush=True)


_SECONDARY = (
    "setup_seconds",
    "read_seconds",
    "session_seconds",
    "warm_seconds",
    "jvm_peak_rss_mb",
)


def print_table(results: list[Row], repeat: int) -> None:
    timing = f"median of {repeat} runs" if repeat > 1 else "1 run each"
    print(f"\nresults ({timing}; each run in a fresh process; rows/s = input orders / s):")
    print("| measurement | orders | s | orders/s | CPU s | peak RSS MB | rows out | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for row in results:
        what = MEASUREMENTS[row.name][1]
        if row.failure and not row.runs:
            print(f"| {what} | {row.store.orders:,} | {row.failure} | | | | | |")
            continue
        notes = []
        if "read_seconds" in row.runs[0]:
            verb = "read + prepare" if row.name == "lifetimes" else "of which read"
            notes.append(f"{verb} {row.median('read_seconds'):.2f} s")
        if row.name == "lifetimes":
            notes.append("s = the call alone")
        if "session_seconds" in row.runs[0]:
            notes.append(
                f"cold query; session start {row.median('session_seconds'):.1f} s, "
                f"warm re-run {row.median('warm_seconds'):.2f} s, "
                f"RSS = Python + JVM ({row.median('jvm_peak_rss_mb'):,.0f} MB)"
            )
        print(
            f"| {what} | {row.store.orders:,} | {row.seconds:.2f} "
            f"| {row.store.orders / row.seconds:,.0f} | {row.median('cpu_seconds'):.1f} "
            f"| {row.peak_rss_mb:,.0f} | {row.runs[-1]['rows_out']:,} | {'; '.join(notes)} |"
        )


def _find(results: list[Row], name: str, customers: int | None = None) -> Row | None:
    for row in results:
        if row.name == name and row.runs and customers in (None, row.store.customers):
            return row
    return None


_TARGETS: tuple[tuple[str, str, str, float | None], ...] = (
    # (ours, peer, label, largest allowed ours/peer ratio; None: no target, for reference)
    ("ours_rfm_aggregates", "sql_rfm", "RFM aggregates / hand-written SQL", TARGET_RFM_VS_SQL),
    ("ours_rfm_aggregates", "polars_rfm", "RFM aggregates / Polars", 1.0),
    ("ours_rfm_minimal", "sql_rfm", "RFM alone (build_rfm) / hand-written SQL", TARGET_RFM_VS_SQL),
    ("ours_rfm", "sql_rfm", "RFM via compute_features / hand-written SQL", TARGET_RFM_VS_SQL),
    ("ours_rfm_minimal", "polars_rfm", "RFM alone (build_rfm) / Polars", 1.0),
    ("ours_rfm", "polars_rfm", "RFM via compute_features / Polars", 1.0),
    ("ours_rfm_minimal", "pandas_rfm", "RFM alone (build_rfm) / pandas", None),
    (
        "ours_profiles",
        "pandas_features",
        "features + RFM + tier + stage / pandas features",
        1 / TARGET_FULL_VS_PANDAS,
    ),
    (
        "ours_features",
        "pandas_features",
        "features only / pandas features",
        1 / TARGET_FULL_VS_PANDAS,
    ),
    ("ours_btyd", "lifetimes", "BTYD summary / lifetimes", 1 / TARGET_BTYD_VS_LIFETIMES),
)


def print_targets(results: list[Row], main_store: Store) -> None:
    """Ours / peer by median wall time (the verdict), best run, and CPU time (user + sys).

    On a machine shared with other work the CPU ratio is the steadier one: a busy core
    stretches the wall time of whichever side happened to run then.
    """
    print("\ntargets (issue 3): ratio = ours / peer, so below 1 means ours is faster")
    print(
        "| comparison | orders | ours s | peer s | ratio (median) | ratio (best run) "
        "| ratio (CPU) | target | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for ours, peer, label, limit in _TARGETS:
        size = main_store.customers
        if peer == "lifetimes" and _find(results, peer, size) is None:
            fallback = _find(results, peer)  # lifetimes ran out of time: the smaller store
            size = fallback.store.customers if fallback is not None else size
        o, p = _find(results, ours, size), _find(results, peer, size)
        target = "(none)" if limit is None else f"<= {limit:.2f}x" if limit != 1 else "< 1x"
        if o is None or p is None:
            missing = peer if p is None else ours
            failure = next((r.failure for r in results if r.name == missing and r.failure), None)
            print(f"| {label} | | | | | | | {target} | not measured ({failure or 'skipped'}) |")
            continue
        ratio = o.seconds / p.seconds
        best = min(r["seconds"] for r in o.runs) / min(r["seconds"] for r in p.runs)
        cpu = o.median("cpu_seconds") / p.median("cpu_seconds")
        within = limit is not None and (ratio < limit if limit == 1 else ratio <= limit)
        met = "-" if limit is None else "yes" if within else "**NO**"
        print(
            f"| {label} | {o.store.orders:,} | {o.seconds:.2f} | {p.seconds:.2f} | {ratio:.2f}x "
            f"| {best:.2f}x | {cpu:.2f}x | {target} | {met} |"
        )
    spark, duck = _find(results, "spark_profiles"), None
    if spark is not None:
        duck = _find(results, "ours_profiles", spark.store.customers)
    if spark is not None and duck is not None:
        print(
            f"| Spark local[2] (cold query) / DuckDB, build_profiles | {spark.store.orders:,} "
            f"| {spark.seconds:.2f} | {duck.seconds:.2f} | {spark.seconds / duck.seconds:.1f}x "
            f"| | | (none) | - |"
        )


# --------------------------------------------------------------------------- output checks


def check_outputs(results: list[Row]) -> bool:
    """Every peer's rows equal ours, customer by customer (floats to 1e-9 relative)."""
    print("\noutput checks (every customer, every shared column):")
    ok = True
    pairs = [
        ("ours_rfm_aggregates", "sql_rfm", RFM_AGGREGATES),
        ("ours_rfm_aggregates", "polars_rfm", RFM_AGGREGATES),
        ("ours_rfm_minimal", "sql_rfm", RFM_AGGREGATES),
        ("ours_rfm_minimal", "pandas_rfm", RFM_AGGREGATES),
        ("ours_rfm_minimal", "polars_rfm", RFM_AGGREGATES),
        ("ours_rfm", "ours_rfm_minimal", (*RFM_AGGREGATES, "rfm_r", "rfm_f", "rfm_m")),
        ("ours_features", "pandas_features", PANDAS_COLUMNS[1:]),
        ("ours_profiles", "ours_features", PANDAS_COLUMNS[1:]),
        ("ours_btyd", "lifetimes", ("frequency", "recency", "T", "monetary_value")),
        ("ours_profiles", "spark_profiles", None),
    ]
    sizes = sorted({row.store.customers for row in results})
    for left_name, right_name, columns in pairs:
        for size in sizes:
            left, right = _find(results, left_name, size), _find(results, right_name, size)
            if left is None or right is None or left.output is None or right.output is None:
                continue
            inner = left_name == "ours_rfm" and right_name == "ours_rfm_minimal"
            message = compare(left.output, right.output, columns, inner=inner)
            status = "equal" if message.startswith("equal") else "DIFFERENT"
            ok &= status == "equal"
            print(f"- {left_name} vs {right_name} ({left.store.orders:,} orders): {message}")
    print_spot_check(results)
    return ok


COLUMNS_PER_PASS = 8
"""Columns compared per pass: at 17 M customers one join of two 70-column result files
would need more memory than the machine has; a few columns at a time fit."""


def compare(
    left_path: Path,
    right_path: Path,
    columns: Sequence[str] | None,
    *,
    inner: bool = False,
    tolerance: float = 1e-9,
) -> str:
    """Compare two result files keyed by ``customer_id``; ``inner`` keeps common keys only.

    Reads the keys, then ``COLUMNS_PER_PASS`` columns at a time from each file.
    """
    import polars as pl
    import pyarrow.parquet as pq

    left_columns, right_columns = pq.read_schema(left_path).names, pq.read_schema(right_path).names
    if columns is None:
        columns = [c for c in left_columns if c in right_columns and c != "customer_id"]
    missing = [c for c in columns if c not in left_columns or c not in right_columns]
    if missing:
        return f"DIFFERENT: missing column(s) {missing}"
    if not inner:
        left = pl.read_parquet(left_path, columns=["customer_id"])
        right = pl.read_parquet(right_path, columns=["customer_id"])
        only_left = left.join(right, on="customer_id", how="anti").height
        only_right = right.join(left, on="customer_id", how="anti").height
        if only_left or only_right:
            return (
                f"DIFFERENT customers: {only_left:,} only in the first, {only_right:,} only in "
                f"the second (of {left.height:,} / {right.height:,})"
            )
    bad: dict[str, int] = {}
    compared = 0
    for start in range(0, len(columns), COLUMNS_PER_PASS):
        some = ["customer_id", *columns[start : start + COLUMNS_PER_PASS]]
        left = pl.read_parquet(left_path, columns=some)
        right = pl.read_parquet(right_path, columns=some)
        joined = left.join(right, on="customer_id", how="inner", suffix="__r")
        compared = joined.height
        bad |= {column: _differing(joined, column, tolerance) for column in some[1:]}
    bad = {column: count for column, count in bad.items() if count}
    if bad:
        return f"DIFFERENT in {len(bad)} column(s) (customers differing): {bad}"
    return f"equal ({compared:,} customers x {len(columns)} columns)"


def _differing(joined: Any, column: str, tolerance: float) -> int:
    """Rows where ``column`` and ``column__r`` differ (nulls equal; floats within tolerance)."""
    import polars as pl

    a, b = pl.col(column), pl.col(f"{column}__r")
    dtype = joined.schema[column]
    if dtype.is_float() or joined.schema[f"{column}__r"].is_float():
        a, b = a.cast(pl.Float64), b.cast(pl.Float64)
        close = (a - b).abs() <= tolerance * pl.max_horizontal(a.abs(), b.abs(), pl.lit(1.0))
        same = (a.is_null() & b.is_null()) | (a.is_nan() & b.is_nan()) | close.fill_null(False)
    elif isinstance(dtype, pl.Datetime):
        same = a.dt.epoch("us").eq_missing(b.dt.epoch("us"))
    elif dtype.is_integer():
        same = a.cast(pl.Int64).eq_missing(b.cast(pl.Int64))
    else:
        same = a.eq_missing(b)
    return int(joined.select((~same.fill_null(False)).sum()).item())


def print_spot_check(results: list[Row]) -> None:
    """A few customers side by side, ours vs pandas, for the record."""
    import polars as pl

    ours, peer = _find(results, "ours_features"), _find(results, "pandas_features")
    if ours is None or peer is None or ours.output is None or peer.output is None:
        return
    if ours.store.customers != peer.store.customers:
        return
    shown = (
        "frequency_days",
        "monetary_total",
        "own_median_interval_days",
        "favourite_category",
        "page_views_30d",
        "logins_trend_30d",
        "days_to_expected_order",
    )
    a = pl.read_parquet(ours.output, columns=["customer_id", *shown])
    b = pl.read_parquet(peer.output, columns=["customer_id", *shown])
    picked = a.filter(pl.col("logins_trend_30d").is_not_null()).sort("customer_id").head(3)
    picked = picked["customer_id"].to_list()
    first = a["customer_id"].min()
    picked += [first] if first not in picked else []
    print("\nspot check, ours (compute_features) / pandas:")
    print("| customer | " + " | ".join(shown) + " |")
    print("|---|" + "---|" * len(shown))
    for customer in picked:
        x = a.filter(pl.col("customer_id") == customer).row(0, named=True)
        y = b.filter(pl.col("customer_id") == customer).row(0, named=True)
        cells = [f"{_fmt(x[c])} / {_fmt(y[c])}" for c in shown]
        print(f"| {customer} | " + " | ".join(cells) + " |")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "null" if value is None else str(value)


def print_phases(result: dict[str, Any]) -> None:
    print("\nours by part (each part executed on its own; DuckDB, 2 threads):")
    print("| part | s |")
    print("|---|---:|")
    for name, seconds in result["parts"].items():
        print(f"| {name} | {seconds:.2f} |")
    operators = result["operators"]
    print(
        "\nDuckDB operator profile of the whole profile query "
        f"(query {operators['query_seconds']:.2f} s, "
        f"CPU {operators['cpu_seconds']:.2f} s), operator time summed over threads, by type:"
    )
    print(
        f"(DuckDB peak buffer memory {operators['peak_buffer_memory_mb']:,.0f} MB, peak "
        f"spill to its temp directory {operators['peak_temp_dir_mb']:,.0f} MB, "
        f"bytes written {operators['bytes_written_mb']:,.0f} MB)"
    )
    print("| operator type | s |")
    print("|---|---:|")
    for kind, seconds in list(operators["by_type"].items())[:12]:
        print(f"| {kind} | {seconds:.2f} |")
    print("\nslowest operators:")
    print("| operator | s | rows out | detail |")
    print("|---|---:|---:|---|")
    for node in operators["slowest"]:
        rows = node["rows"]
        rows_text = f"{rows:,}" if isinstance(rows, int) else str(rows)
        detail = node["info"].replace("|", "/")
        print(f"| {node['type']} | {node['seconds']:.2f} | {rows_text} | {detail} |")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_700_000, help="~6 orders each")
    parser.add_argument(
        "--spark-customers",
        type=int,
        default=170_000,
        help="store size for Spark (and for lifetimes when it times out); 0 skips Spark",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--only", type=lambda s: [x for x in s.split(",") if x], default=None,
        help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument(
        "--lifetimes-timeout", type=float, default=600.0, help="seconds for the lifetimes run"
    )
    parser.add_argument("--phases", action="store_true", help="instrumented run of ours")
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit for ours (Settings.duckdb_memory_limit, default 60%% of RAM) "
        "and the SQL peer (default: DuckDB's, 80%% of RAM)",
    )
    parser.add_argument(
        "--feature-buckets",
        type=int,
        default=None,
        help="customer-hash buckets for ours_features / ours_profiles (Settings.feature_buckets; "
        "default: planned from the memory limit, 1 unless the store needs more)",
    )
    parser.add_argument("--keep-outputs", action="store_true", help="keep the result files")
    parser.add_argument(
        "--live-src",
        action="store_true",
        help="import perennial from the working tree instead of a copy taken at the start",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.customers < 1 or args.repeat < 1 or args.spark_customers < 0:
        parser.error("--customers and --repeat must be positive")
    unknown = sorted(set(args.only or []) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}")
    return args


if __name__ == "__main__":
    sys.exit(main())
