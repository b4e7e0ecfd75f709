"""Demo data generation speed: the issue asks for 10 M orders in about a minute.

There is no peer program for this claim (it is our own generator), so the script reports
the absolute time against the 60 s target, with rows per second and peak RSS.

    .venv/bin/python benchmarks/bench_demo.py                 # ~10 M orders
    .venv/bin/python benchmarks/bench_demo.py --customers 50000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from perennial.demo import generate_demo

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_670_000)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="perennial-demo-bench-"))
    try:
        started = time.perf_counter()
        dataset = generate_demo(out, customers=arguments.customers, seed=arguments.seed)
        seconds = time.perf_counter() - started
        written_mb = sum(f.path.stat().st_size for f in dataset.files) / 1e6
    finally:
        shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers {dataset.customers:,}  orders {dataset.orders:,}  events {dataset.events:,}")
    print(
        f"{seconds:.1f} s, {dataset.orders / seconds:,.0f} orders/s, "
        f"{written_mb:,.0f} MB written, peak RSS {peak_mb:,.0f} MB"
    )
    per_ten_million = seconds * 10_000_000 / max(dataset.orders, 1)
    verdict = "met" if per_ten_million <= TARGET_SECONDS * 1.1 else "NOT met"
    print(
        f"scaled to 10 M orders: {per_ten_million:.1f} s (target about {TARGET_SECONDS:.0f} s: "
        f"{verdict})"
    )


if __name__ == "__main__":
    main()
