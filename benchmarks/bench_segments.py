"""Segments: preview counts over N profiles, and the live path under 5,000 events/s.

The store is built once per size from the demo generator (``generate_demo(customers=N,
seed=7)``: about 6 orders and 23 events per customer), ingested, and given profiles
as of the end of the demo period (seed000 stages); later runs reuse it
(``--data-dir``, git-ignored). The clock is pinned to that instant.

1. **Preview**: for each of ten representative expressions (profile fields, rule
   arithmetic, events with counts, windows, property filters, sequences, birthdays,
   segment references), ``SegmentService.preview`` (check, count, customer total,
   20-customer sample) is timed three times; the median is reported, with the count.
   Target (issue 6): < 1 s over 1 M profiles on DuckDB.
2. **Live path**: the real server (``perennial serve``, background drainer every
   ``--drain`` seconds) holds 50 live segments ``did bench_ping where k == i``
   (i = 0..49); a load generator sends ``--rate`` track events per second (batches of
   100) for ``--seconds``, each for a distinct customer and segment, and a poller reads
   the enter/exit log every 50 ms. Delay = when the enter appeared in the log minus
   when its event was sent (the 202 means it is durable); p50 / p99 / max reported.
3. **Full recompute** of the same 50 segments in the same run (``perennial segments
   refresh``'s path): what each live batch would cost without incremental evaluation.

    .venv/bin/python benchmarks/bench_segments.py                     # 1 M customers
    .venv/bin/python benchmarks/bench_segments.py --customers 170000  # quick
Results: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path.insert(0, str(ROOT))

from bench_track import _free_port, _operator_token, _start_server  # noqa: E402
from perennial.config import Settings  # noqa: E402
from perennial.lifecycle.rule_errors import ParseError  # noqa: E402
from perennial.segments.service import SegmentService  # noqa: E402

SEED = 7
DATA_VERSION = "s1"
CLOCK = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
"""2026-01-01 00:00 Asia/Shanghai: the end of the demo period."""
SEGMENTS = 50
TARGET_PREVIEW_SECONDS = 1.0

EXPRESSIONS = {
    "stage": "stage == 'dormant'",
    "rfm": "rfm_segment in ('cant_lose_them', 'at_risk') and monetary_total > 500",
    "own rhythm": "recency_days > 1.5 * coalesce(own_median_interval_days, "
    "category_median_interval_days, population_median_interval_days)",
    "event window": "did login in last 30 days",
    "no event + field": "did not login in last 30 days and frequency_orders >= 3",
    "counts": "did add_to_cart at least 3 times in last 90 days and not did search in last 7 days",
    "property filter": "did page_view where page starts with '/p/P-FRT' in last 14 days",
    "education A": "did course_purchased and not did course_completed "
    "and not did lesson_completed in last 30 days",
    "sequence": "did course_purchased not followed by lesson_completed within 14 days",
    "birthday": "days_to_anniversary(birthday) <= 6 and frequency_orders >= 1",
}


def store_dir(data_dir: Path, customers: int) -> Path:
    return data_dir / f"segments-{DATA_VERSION}-{customers}c-s{SEED}"


def prepare(data_dir: Path, customers: int) -> Path:
    """Generate, ingest and profile once; returns the store's home."""
    from perennial.demo import generate_demo
    from perennial.ingest.pipeline import ingest_file
    from perennial.lifecycle.presets import resolve_model_path
    from perennial.lifecycle.profiles import build_profiles, store_profiles
    from perennial.lifecycle.stage_model import load_stage_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    root = store_dir(data_dir, customers)
    marker = root / "store.json"
    if marker.exists():
        return root / "home"
    started = time.perf_counter()
    dataset = generate_demo(root / "source", customers=customers, seed=SEED)
    settings = Settings(home=root / "home")
    for demo_file in dataset.files:
        ingest_file(demo_file.path, settings, table=demo_file.table)
    # One event of the benchmark's own type, so segments on it are not "never seen".
    ping = root / "source" / "bench-ping.jsonl"
    ping.write_bytes(
        orjson.dumps(
            {
                "event_id": "bench-ping-0",
                "customer_id": "C0000001",
                "event_type": "bench_ping",
                "ts": "2025-12-31T00:00:00Z",
                "properties": {"k": -1},
            }
        )
        + b"\n"
    )
    ingest_file(ping, settings, table="events")
    model = load_stage_model(resolve_model_path("seed000"))
    warehouse = Warehouse(settings.warehouse)
    with open_backend(settings) as backend:
        profiles = build_profiles(
            backend, warehouse.snapshot(), CLOCK, model, timezone="Asia/Shanghai"
        )
        store_profiles(warehouse, backend.to_pyarrow(profiles), "profiles")
    subprocess.run(["rm", "-rf", str(root / "source")], check=True)
    marker.write_text(
        json.dumps({"customers": customers, "seconds": time.perf_counter() - started})
    )
    return root / "home"


def _settings(store_home: Path, home: Path, **overrides: Any) -> Settings:
    return Settings(
        home=home,
        warehouse_path=store_home / "warehouse",
        clock=CLOCK,
        **overrides,
    )


def measure_previews(settings: Settings) -> list[dict[str, Any]]:
    service = SegmentService.migrated(settings)
    service.preview("stage == 'dormant'")  # warm: event types cached, files in the page cache
    rows = []
    for label, text in EXPRESSIONS.items():
        try:
            service.check(text)
        except ParseError as error:  # a store without that event type (an older generator)
            rows.append({"label": label, "expression": text, "skipped": str(error)})
            print(f"  preview {label:18} skipped: {error}", flush=True)
            continue
        seconds, count = [], 0
        for _ in range(3):
            result = service.preview(text)
            seconds.append(result.seconds)
            count = result.count
        rows.append(
            {
                "label": label,
                "expression": text,
                "count": count,
                "customers": result.customers,
                "median_s": statistics.median(seconds),
                "max_s": max(seconds),
            }
        )
        print(f"  preview {label:18} {count:>9,}  {statistics.median(seconds):.3f} s", flush=True)
    return rows


def customers_sample(settings: Settings, count: int) -> list[str]:
    import duckdb

    from perennial.store.warehouse import Warehouse

    paths = Warehouse(settings.warehouse).snapshot().paths("customers")
    ids = duckdb.sql("SELECT customer_id FROM read_parquet(?)", params=[paths]).fetchall()
    generator = random.Random(SEED)  # noqa: S311 - a reproducible sample, not a secret
    return generator.sample([row[0] for row in ids], count)


def live_path(store_home: Path, rate: int, seconds: float, drain: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    home = work / "home"
    settings = _settings(store_home, home)
    service = SegmentService.migrated(settings)
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    # A run mark in the filter: events of earlier runs (already in the store) match none.
    for index in range(SEGMENTS):
        service.save(f"ping-{index:02d}", f"did bench_ping where (k == {index} and run == '{run}')")
    full_started = time.perf_counter()
    full = service.refresh()
    full_seconds = time.perf_counter() - full_started
    token = _operator_token(settings)
    port = _free_port()
    env = {
        "PERENNIAL_WAREHOUSE_PATH": str(settings.warehouse),
        "PERENNIAL_CLOCK": CLOCK.isoformat(),
        "PERENNIAL_SEGMENT_REFRESH_SECONDS": "86400",
    }
    import os

    os.environ.update(env)
    server = _start_server(home, port, drain)
    total = int(rate * seconds)
    customers = customers_sample(settings, total)
    sent: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], float] = {}
    stop = threading.Event()
    deadline = time.monotonic() + seconds + 120
    poller = threading.Thread(
        target=_poll_changes, args=(port, token, seen, sent, stop, deadline), daemon=True
    )
    poller.start()
    started = time.monotonic()
    senders = 8
    items = [(customer, number % SEGMENTS) for number, customer in enumerate(customers)]
    failures: list[int] = []
    threads = [
        threading.Thread(
            target=lambda part: failures.append(
                _send_events(port, token, part, rate / senders, sent, run)
            ),
            args=(items[index::senders],),
        )
        for index in range(senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = sum(failures)
    sending = time.monotonic() - started
    stop.set()
    poller.join(timeout=seconds + 180)
    server.terminate()
    server.wait(timeout=60)
    delays = sorted(seen[key] - sent[key] for key in sent if key in seen)
    missing = len(sent) - len(delays)
    quantiles = statistics.quantiles(delays, n=100) if len(delays) > 2 else [float("nan")] * 99
    result = {
        "events_sent": len(sent),
        "send_seconds": sending,
        "events_per_second": len(sent) / sending,
        "errors": errors,
        "entered": len(delays),
        "missing": missing,
        "p50_s": quantiles[49],
        "p99_s": quantiles[98],
        "max_s": delays[-1] if delays else float("nan"),
        "full_recompute_s": full_seconds,
        "full_recompute_segments": len(full),
        "server_log": str(work / "server.log"),
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def _poll_changes(
    port: int,
    token: str,
    seen: dict[tuple[str, str], float],
    sent: dict[tuple[str, str], float],
    stop: threading.Event,
    deadline: float,
) -> None:
    """Read the enter/exit log every 50 ms, noting when each enter first appears."""
    after = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        while not (stop.is_set() and (len(seen) >= len(sent) or time.monotonic() > deadline)):
            page = client.get("/v1/segments/changes", params={"after": after, "limit": 10000})
            now = time.monotonic()
            body = page.json()
            for change in body["items"]:
                if change["change"] == "enter" and change["trigger"] == "live":
                    seen.setdefault((change["name"], change["customer_id"]), now)
            after = body["next_after"]
            time.sleep(0.05)


def _send_events(
    port: int,
    token: str,
    items: list[tuple[str, int]],
    rate: float,
    sent: dict[tuple[str, str], float],
    run: str,
) -> int:
    """Send one event per (customer, segment index) at ``rate`` per second in batches of
    100; count failed requests. Several run at once, one HTTP connection each."""
    batch, errors = 100, 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
        for start in range(0, len(items), batch):
            pause = started + start / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            chunk = items[start : start + batch]
            events = [
                {
                    "event_id": f"ping-{run}-{customer}",
                    "customer_id": customer,
                    "event_type": "bench_ping",
                    "ts": CLOCK.isoformat(),
                    "properties": {"k": index, "run": run},
                }
                for customer, index in chunk
            ]
            answer = client.post("/v1/track", content=orjson.dumps({"events": events}))
            if answer.status_code != 202:
                errors += 1
                continue
            at = time.monotonic()
            for customer, index in chunk:
                sent[(f"ping-{index:02d}", customer)] = at
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--rate", type=int, default=5000, help="track events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=1.0, help="drain interval (s)")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument(
        "--store-home",
        type=Path,
        default=None,
        help="an existing store's home with profiles as of the clock (e.g. the 100 M-order "
        "features store after `lifecycle compute --as-of 2025-12-31`): previews only",
    )
    args = parser.parse_args()
    source = (
        f"{args.customers:,} customers (seed {SEED})"
        if args.store_home is None
        else f"the existing store at {args.store_home}"
    )
    print(f"store: {source}, clock {CLOCK.isoformat()}", flush=True)
    started = time.perf_counter()
    if args.store_home is not None:
        args.skip_live = True  # the live path needs the benchmark's own event type
        store_home = args.store_home
    else:
        store_home = prepare(args.data_dir, args.customers)
    print(f"store ready in {time.perf_counter() - started:.0f} s: {store_home}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-segments-preview-") as scratch:
        previews = measure_previews(_settings(store_home, Path(scratch) / "home"))
    worst = max(row["median_s"] for row in previews if "median_s" in row)
    print(f"slowest preview {worst:.3f} s (target < {TARGET_PREVIEW_SECONDS} s)", flush=True)
    live = None if args.skip_live else live_path(store_home, args.rate, args.seconds, args.drain)
    label = args.customers if args.store_home is None else args.store_home.parent.name
    out = ROOT / "data" / f"bench-segments-{label}.json"
    out.write_text(json.dumps({"previews": previews, "live": live}, indent=2, default=str))
    print(f"written {out}", flush=True)


if __name__ == "__main__":
    main()
