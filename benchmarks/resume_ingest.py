"""Resume a bench_features store: ingest the JSON Lines files a run did not reach, in chunks.

    .venv/bin/python benchmarks/resume_ingest.py   # after a 17 M-customer prepare stopped

The run at 973379a stopped on events-education.jsonl (about 15 M lines touching every month):
its dedupe against the 390 M stored events needed more temporary disk than was free.
Each remaining JSON Lines file is ingested in chunks of CHUNK lines (same rows, same order).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_features as bf
from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file

CHUNK = 2_000_000
root = bf.store_dir(bf.DEFAULT_DATA_DIR, 17_000_000)
source = root / "source"
settings = Settings(home=root / "home", duckdb_threads=bf.THREADS)
chunks = root / "chunks"
chunks.mkdir(exist_ok=True)
started = time.perf_counter()
for name in ("events-education.jsonl", "events-identity.jsonl"):
    with open(source / name, "rb") as handle:
        part = 0
        while True:
            lines = [line for _, line in zip(range(CHUNK), handle, strict=False)]
            if not lines:
                break
            path = chunks / f"{name.removesuffix('.jsonl')}-{part:03d}.jsonl"
            path.write_bytes(b"".join(lines))
            report = ingest_file(path, settings, table="events", now=bf.INGEST_NOW)
            print(
                json.dumps(
                    {
                        "file": path.name,
                        "accepted": report.accepted,
                        "quarantined": report.quarantined,
                        "seconds": round(report.seconds, 2),
                    }
                ),
                flush=True,
            )
            path.unlink()
            part += 1
print("resumed in", round(time.perf_counter() - started, 1), "s", flush=True)
info = {"customers": 17_000_000, "seed": bf.SEED, "resumed": True, **bf.store_counts(settings)}
(root / "store.json").write_text(json.dumps(info, indent=2))
print(info, flush=True)
