"""Stage history backfill: a year of days for a million customers, against recomputing each day.

The store is the one ``bench_features.py`` builds (``generate_demo(customers=N, seed=7)``,
ingested through the real pipeline; cached under ``--data-dir``). Two measurements, each
in its own fresh interpreter, 2 DuckDB threads, the seed000 stage model, Asia/Shanghai:

* ours: ``backfill(...)`` over ``--days`` days ending 2025-12-31 (the end of the demo
  period), every day's stages and transitions written to the warehouse in one commit;
* the naive peer: ``build_profiles`` from scratch as of ``--naive-days`` days spread over
  the same range (the first, the last and evenly between), timed one by one; its total
  for the range is the mean day times the number of days (it would also have to join
  consecutive days for the transitions; that is not counted, in its favour).

    .venv/bin/python benchmarks/bench_backfill.py                       # 1 M customers, 365 days
    .venv/bin/python benchmarks/bench_backfill.py --customers 50000 --days 60   # quick

Results: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench_features import DEFAULT_DATA_DIR, STAGE_MODEL, THREADS, TIMEZONE, store_dir
from bench_ingest import _cpu_seconds, _peak_rss_mb

END = date(2025, 12, 31)
"""The last day of the demo period."""


def measure_backfill(home: Path, start: date, end: date) -> dict[str, Any]:
    """Child: the incremental backfill of ``start``..``end``, written to the store."""
    from perennial.config import Settings
    from perennial.lifecycle.backfill import StageDay, backfill
    from perennial.lifecycle.stage_model import load_stage_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    settings = Settings(home=home, duckdb_threads=THREADS)
    model = load_stage_model(STAGE_MODEL)
    day_seconds: list[float] = []
    last = [time.perf_counter()]

    def tick(stage_day: StageDay) -> None:
        now = time.perf_counter()
        day_seconds.append(now - last[0])
        last[0] = now
        if len(day_seconds) % 30 == 0:
            print(f"  {stage_day.day}: {len(day_seconds)} days", file=sys.stderr, flush=True)

    cpu, started = _cpu_seconds(), time.perf_counter()
    last[0] = started
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        result = backfill(backend, snapshot, model, start, end, timezone=TIMEZONE, on_day=tick)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "days": len(day_seconds),
        "first_day_seconds": day_seconds[0],
        "median_day_seconds": sorted(day_seconds)[len(day_seconds) // 2],
        "max_day_seconds": max(day_seconds),
        "stage_rows": result.stage_rows,
        "transitions": result.transitions,
        "recomputed_per_day": result.recomputed / max(1, len(day_seconds)),
    }


def measure_naive(home: Path, days: list[date]) -> dict[str, Any]:
    """Child: ``build_profiles`` from scratch as of each of ``days``."""
    from perennial.config import Settings
    from perennial.lifecycle.profiles import as_of_instant, build_profiles
    from perennial.lifecycle.stage_model import load_stage_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    settings = Settings(home=home, duckdb_threads=THREADS)
    model = load_stage_model(STAGE_MODEL)
    seconds = []
    rows = 0
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        for day in days:
            started = time.perf_counter()
            as_of = as_of_instant(day.isoformat(), TIMEZONE)
            table = backend.to_pyarrow(
                build_profiles(backend, snapshot, as_of, model, timezone=TIMEZONE)
            )
            seconds.append(time.perf_counter() - started)
            rows = table.num_rows
            print(f"  naive {day}: {seconds[-1]:.2f} s", file=sys.stderr, flush=True)
    return {"day_seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "rows_last_day": rows}


def _child(kind: str, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--one", kind,
        "--customers", str(args.customers), "--days", str(args.days),
        "--naive-days", str(args.naive_days), "--data-dir", str(args.data_dir), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed with exit code {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _ensure_store(args: argparse.Namespace) -> Path:
    root = store_dir(args.data_dir, args.customers)
    if not (root / "store.json").is_file():
        print(f"building the store for {args.customers:,} customers ...", flush=True)
        features = Path(__file__).with_name("bench_features.py")
        command = [
            sys.executable, str(features), "--one", "prepare", "--customers",
            str(args.customers), "--data-dir", str(args.data_dir),
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return root


def _sample_days(start: date, end: date, count: int) -> list[date]:
    span = (end - start).days
    if count <= 1 or span == 0:
        return [end]
    return sorted({start + timedelta(days=round(i * span / (count - 1))) for i in range(count)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--naive-days", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--one", choices=["backfill", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    start = END - timedelta(days=args.days - 1)
    home = store_dir(args.data_dir, args.customers) / "home"
    if args.one == "backfill":
        print(json.dumps(measure_backfill(home, start, END)))
        return 0
    if args.one == "naive":
        print(json.dumps(measure_naive(home, _sample_days(start, END, args.naive_days))))
        return 0

    root = _ensure_store(args)
    info = json.loads((root / "store.json").read_text())
    print(
        f"store {root.name}: {info['customers']:,} customers, {info['orders_rows']:,} orders, "
        f"{info['events_rows']:,} events; range {start} .. {END} ({args.days} days), "
        f"{TIMEZONE}, {THREADS} threads, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    ours = _child("backfill", args)
    naive = _child("naive", args)
    naive_day = sum(naive["day_seconds"]) / len(naive["day_seconds"])
    naive_total = naive_day * args.days
    print("\n| measurement | days | s | s per day | peak RSS MB | notes |")
    print("|---|---:|---:|---:|---:|---|")
    print(
        f"| ours: backfill (incremental) | {ours['days']} | {ours['seconds']:,.1f} | "
        f"{ours['seconds'] / ours['days']:.2f} (median {ours['median_day_seconds']:.2f}, first "
        f"{ours['first_day_seconds']:.2f}, max {ours['max_day_seconds']:.2f}) | "
        f"{ours['peak_rss_mb']:,.0f} | {ours['stage_rows']:,} stage rows, "
        f"{ours['transitions']:,} transitions, {ours['recomputed_per_day']:,.0f} customers "
        f"recomputed per day, CPU {ours['cpu_seconds']:,.0f} s |"
    )
    print(
        f"| peer: build_profiles from scratch each day | {args.days} (extrapolated from "
        f"{len(naive['day_seconds'])}) | {naive_total:,.1f} | {naive_day:.2f} | "
        f"{naive['peak_rss_mb']:,.0f} | measured days: "
        + ", ".join(f"{s:.2f} s" for s in naive["day_seconds"])
        + " |"
    )
    print(f"\nratio naive / ours: {naive_total / ours['seconds']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
