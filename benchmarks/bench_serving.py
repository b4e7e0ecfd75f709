"""Serving store: how long a refresh takes, how big the file is, how fast it answers.

Works on a copy of a warehouse (data files hard-linked, manifests copied), so the
source is never changed; computes the profiles there first when it has none
(as of the last day of its stage history), then times each refresh step, and the
reads the API makes: a customer's 360 row plus its first timeline page, a board
load, flows over the whole history and the KPI cards.

    .venv/bin/python benchmarks/bench_serving.py \\
        --warehouse benchmarks/data/features-f1-1000000c-s7/home/warehouse
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from perennial.config import Settings
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import (
    PROFILES_TABLE,
    as_of_instant,
    build_profiles,
    store_profiles,
)
from perennial.lifecycle.stage_model import load_stage_model
from perennial.serving import ServingStore, refresh_serving
from perennial.serving.board import load_board
from perennial.serving.customers import customer_record, document_codec, timeline_rows
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse


def _linked_copy(source: Path, target: Path) -> None:
    """Data files hard-linked (never written in place), manifests and lock copied."""
    shutil.copytree(source, target, copy_function=os.link, ignore=shutil.ignore_patterns("_*"))
    shutil.copytree(source / "_manifests", target / "_manifests")


def _profiles(settings: Settings, model_name: str) -> float:
    model = load_stage_model(resolve_model_path(model_name))
    warehouse = Warehouse(settings.warehouse)
    if warehouse.snapshot().paths(PROFILES_TABLE):
        return 0.0
    started = time.perf_counter()
    with open_backend(settings) as backend:
        snapshot = warehouse.snapshot()
        span = backend.connection.con.sql(
            "SELECT max(day) FROM read_parquet(?)", params=[snapshot.paths("stage_history")]
        ).fetchall()[0][0]
        as_of = as_of_instant(span.isoformat(), model.timezone or settings.default_timezone)
        table = backend.to_pyarrow(build_profiles(backend, snapshot, as_of, model))
    store_profiles(warehouse, table, "profiles")
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"p50 {p50 * 1e6:,.0f} us, p99 {p99 * 1e6:,.0f} us"


def _reads(path: Path, lookups: int) -> None:
    store = ServingStore(path)
    connection = store.connection()
    ids = [row[0] for row in connection.execute("SELECT customer_id FROM customers")]
    codec = document_codec(connection)
    chosen = random.Random(7).sample(ids, min(lookups, len(ids)))  # noqa: S311 (sampling)
    samples = []
    for customer_id in chosen:
        started = time.perf_counter()
        customer_record(connection, customer_id, codec)
        timeline_rows(connection, customer_id, before=None, limit=21)
        samples.append(time.perf_counter() - started)
    print(f"360 row + first timeline page, {len(chosen):,} customers: {_percentiles(samples)}")
    started = time.perf_counter()
    board = store.cached("board", load_board)
    print(f"board load (first request after a refresh): {time.perf_counter() - started:.2f} s")
    if board.history:
        started = time.perf_counter()
        flows = board.flows(*board.history)
        print(
            f"flows {board.history[0]} -> {board.history[1]}: "
            f"{(time.perf_counter() - started) * 1e3:.1f} ms, {len(flows)} cells"
        )
    started = time.perf_counter()
    board.kpis(30)
    print(f"KPI cards, 30 days: {(time.perf_counter() - started) * 1e3:.1f} ms")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--model", default="seed000")
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: tmp).")
    parser.add_argument("--lookups", type=int, default=10_000)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    settings = Settings(home=work / "home")
    _linked_copy(args.warehouse.resolve(), settings.warehouse)
    print(f"profiles computed in {_profiles(settings, args.model):.1f} s (0: already there)")
    marks: list[tuple[str, float]] = []
    summary = refresh_serving(
        settings,
        load_stage_model(resolve_model_path(args.model)),
        on_step=lambda step: marks.append((step, time.perf_counter())),
    )
    marks.append(("end", time.perf_counter()))
    steps = ", ".join(
        f"{name} {after - before:.1f} s" for (name, before), (_, after) in itertools.pairwise(marks)
    )
    print(
        f"refresh: {summary.seconds:.1f} s for {summary.customers:,} customers, "
        f"{summary.timeline_items:,} timeline items, {summary.transitions:,} transitions; "
        f"{summary.bytes / 2**30:.2f} GiB\n  steps: {steps}"
    )
    _reads(summary.path, args.lookups)
    print(f"work folder: {work} (remove it when done)")


if __name__ == "__main__":
    main()
