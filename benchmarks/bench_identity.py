"""Identity resolution at scale: time and peak memory of ingesting the demo's identity files.

Claim (DESIGN.md section 3, "memory stays bounded"): resolving a file's identities
needs memory bounded by ``duckdb_memory_limit``, not by the file. Each step runs in a
fresh process so its peak RSS (VmHWM) is its own; the peak of identity resolution
alone is read after resetting the high-water mark (``/proc/self/clear_refs``) when
resolution starts.

    .venv/bin/python benchmarks/bench_identity.py --demo benchmarks/data/demo-1700000 \\
        --customers 1700000 --work /tmp/bench-identity

generates the demo files if the folder is missing, then ingests into fresh homes:
``customers.csv``, then ``events-identity.jsonl`` on top of it, then the events file
alone (``--memory-limit 1GB`` sets ``duckdb_memory_limit``; default 60 % of RAM). Run
it with ``PYTHONPATH=<other checkout>/src`` to measure other code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from perennial.config import Settings
import perennial.ingest.pipeline as pipeline

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) // 1024

spans = {}
resolve = pipeline.resolve_identities
def timed(*args, **kwargs):
    spans["before_mb"] = peak_mb()
    with open("/proc/self/clear_refs", "w") as reset:
        reset.write("5")  # the high-water mark restarts at the current RSS
    started = time.perf_counter()
    outcome = resolve(*args, **kwargs)
    spans["resolve_s"] = time.perf_counter() - started
    spans["resolve_peak_mb"] = peak_mb()
    return outcome
pipeline.resolve_identities = timed
source, home, table, limit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
settings = Settings(home=home, duckdb_memory_limit=limit or None)
started = time.perf_counter()
report = pipeline.ingest_file(source, settings, table=table, now=datetime(2026, 11, 23, tzinfo=UTC))
print(json.dumps({
    "file": source.name, "rows": report.rows_read, "merges": report.identity_merges,
    "conflicts": report.identity_conflicts, "total_s": time.perf_counter() - started,
    **spans,
}))
"""

_STEPS = (
    ("customers.csv", "customers", "main"),
    ("events-identity.jsonl", "events", "main"),
    ("events-identity.jsonl", "events", "events-alone"),
)


def _ingest(source: Path, home: Path, table: str, limit: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(home), table, limit],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True, help="demo folder (made if missing)")
    parser.add_argument("--customers", type=int, default=1_700_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for homes")
    parser.add_argument("--memory-limit", default="", help="duckdb_memory_limit, e.g. 1GB")
    args = parser.parse_args()
    if not (args.demo / "customers.csv").exists():
        from perennial.demo import generate_demo

        generate_demo(args.demo, customers=args.customers, seed=args.seed)
    shutil.rmtree(args.work, ignore_errors=True)
    print("| file | home | rows | merges | conflicts | ingest s | resolve s | "
          "peak RSS before resolve MB | peak RSS in resolve MB |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, table, home in _STEPS:
        result = _ingest(args.demo / name, args.work / home, table, args.memory_limit)
        print(
            f"| {name} | {home} | {result['rows']:,} | {result['merges']:,} | "
            f"{result['conflicts']:,} | {result['total_s']:.1f} | {result['resolve_s']:.1f} | "
            f"{result['before_mb']:,} | {result['resolve_peak_mb']:,} |",
            flush=True,
        )
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
