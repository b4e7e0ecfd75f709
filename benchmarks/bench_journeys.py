"""Journeys: N customers through a three-step journey, delivered to a loopback sink.

The journey is ``send -> wait 1 s -> exit``: a message (app push routed to a webhook
receiver, or e-mail to an SMTP server), a wait, the end. Customers and their
profiles come from the segments benchmark's demo store (``bench_segments.py``
builds it: names, e-mail addresses, consent flags as a CRM export holds them), so
the worker reads real profiles, renders real templates and applies the real
guardrails (consent from the record; no quiet hours or caps, so the rate measured
is the machinery's, not the policy's).

For each configuration (operational store and number of ``perennial worker``
processes), in one run:
1. enrol every customer (manual enrolment, 20,000 per transaction), timed;
2. start the sink process and the workers; wait until every run has ended and
   every message is sent or suppressed;
3. read the sink's record: **sends/s** (deliveries over the span from the first to
   the last), **p50/p99 delay** from the message becoming due (the run reaching the
   send step) to its arrival, and from enrolment to arrival; **duplicates** (keys
   received twice) and **losses** (messages recorded sent that never arrived).
Targets (issue 7): >= 2,000 sends/s to the webhook sink and >= 1,000/s to SMTP on
SQLite with one worker; scaling with workers on PostgreSQL; zero duplicates, zero
losses.

    .venv/bin/python benchmarks/bench_journeys.py --customers 1000000 \\
        --configs sqlite:1 --sinks webhook,smtp
    .venv/bin/python benchmarks/bench_journeys.py --customers 200000 \\
        --configs postgres:1,postgres:2,postgres:4 --sinks webhook
Results: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(REPO))

from bench_segments import prepare  # noqa: E402
from bench_track import _free_port  # noqa: E402
from perennial.config import Settings  # noqa: E402
from perennial.journeys.customers import WarehouseCustomers  # noqa: E402
from perennial.journeys.enrolment import EntryRequest  # noqa: E402
from perennial.journeys.loading import read_journey_text  # noqa: E402
from perennial.journeys.repository import publish_latest, save_version  # noqa: E402
from perennial.journeys.runtime import JourneyRuntime  # noqa: E402
from perennial.journeys.tables import JOURNEY_OUTBOX, JOURNEY_RUNS  # noqa: E402
from perennial.store.operational import create_engine_for, migrate  # noqa: E402
from perennial.store.warehouse import Warehouse  # noqa: E402

JOURNEY = """
journey: bench
trigger: {type: manual}
start: message
steps:
  message:
    type: send
    channel: CHANNEL
    message:
      subject: "{{ name | default('Hello') }}, your monthly report"
      text: "Hi {{ name | default('there') }}: {{ frequency_orders }} orders so far."
    next: pause
  pause: {type: wait, duration: 1s, next: done}
  done: {type: exit}
"""
TARGETS = {"webhook": 2000.0, "smtp": 1000.0}


def customer_ids(store_home: Path, count: int) -> list[str]:
    snapshot = Warehouse(store_home / "warehouse").snapshot()
    ids = sorted(
        value
        for path in snapshot.paths("profiles")
        for value in pq.read_table(path, columns=["customer_id"]).column(0).to_pylist()
    )
    return ids[:count]


def run_config(
    store: str,
    workers: int,
    sink: str,
    ids: list[str],
    store_home: Path,
    pg_url: str | None,
    work: Path,
    batch: int,
) -> dict[str, Any]:
    name = f"{store}-{workers}w-{sink}"
    home = work / name
    url = _database(pg_url, name.replace("-", "_")) if store == "postgres" else None
    guardrails = work / "guardrails.yaml"
    guardrails.write_text("quiet_hours: null\ncaps: []\nrequire_opt_in: []\n")
    settings = Settings(
        home=home,
        warehouse_path=store_home / "warehouse",
        operational_url=url,
        signing_secret="bench",  # noqa: S106 - a throwaway key
        guardrails_path=guardrails,
    )
    migrate(settings)
    engine = create_engine_for(settings)
    journey = read_journey_text(
        JOURNEY.replace("CHANNEL", "app_push" if sink == "webhook" else "email"), "bench"
    )
    now = datetime.now(UTC)
    with engine.begin() as connection:
        save_version(connection, journey, actor="bench", now=now)
        publish_latest(connection, "bench", actor="bench", now=now)
    runtime = JourneyRuntime(settings, engine, WarehouseCustomers(settings, engine))
    started = time.perf_counter()
    for start in range(0, len(ids), 20_000):
        at = datetime.now(UTC)
        chunk = [EntryRequest(c, "bench", at) for c in ids[start : start + 20_000]]
        runtime.enroll("bench", chunk, at)
    enrol_seconds = time.perf_counter() - started

    port = _free_port()
    record = work / f"{name}.tsv"
    environment = {
        **os.environ,
        "PERENNIAL_HOME": str(home),
        "PERENNIAL_WAREHOUSE_PATH": str(store_home / "warehouse"),
        "PERENNIAL_SIGNING_SECRET": "bench",
        "PERENNIAL_GUARDRAILS_PATH": str(guardrails),
        **({"PERENNIAL_OPERATIONAL_URL": url} if url else {}),
        **(
            {"PERENNIAL_CHANNEL_WEBHOOKS": json.dumps({"app_push": f"http://127.0.0.1:{port}/"})}
            if sink == "webhook"
            else {"PERENNIAL_SMTP_HOST": "127.0.0.1", "PERENNIAL_SMTP_PORT": str(port)}
        ),
    }
    with ExitStack() as stack:
        sink_process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "delivery_sinks.py"),
                sink,
                "--port",
                str(port),
                "--out",
                str(record),
            ]
        )
        stack.callback(_stop, sink_process)
        time.sleep(2.0)
        worker_started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "perennial"),
                    "worker",
                    "--poll",
                    "0.2",
                    "--batch",
                    str(batch),
                    "--owner",
                    f"w{index}",
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
            )
            for index in range(workers)
        ]
        for process in processes:
            stack.callback(_stop, process)
        while not _finished(engine, len(ids)):
            time.sleep(1.0)
        elapsed = time.perf_counter() - worker_started
    return _measure(engine, record, name, len(ids), enrol_seconds, elapsed, sink)


def _finished(engine: sa.Engine, total: int) -> bool:
    with engine.connect() as connection:
        ended = connection.execute(
            sa.select(sa.func.count()).where(
                JOURNEY_RUNS.c.status != "active", JOURNEY_RUNS.c.status != "waiting"
            )
        ).scalar_one()
        open_messages = connection.execute(
            sa.select(sa.func.count()).where(JOURNEY_OUTBOX.c.status.in_(("pending", "sending")))
        ).scalar_one()
    return int(ended) == total and int(open_messages) == 0


def _measure(
    engine: sa.Engine,
    record: Path,
    name: str,
    total: int,
    enrol: float,
    elapsed: float,
    sink: str,
) -> dict[str, Any]:
    arrivals: dict[str, float] = {}
    lines = 0
    for line in record.read_text().splitlines():
        key, _, at = line.partition("\t")
        lines += 1
        arrivals.setdefault(key.strip("<>").removesuffix("@perennial"), float(at))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                JOURNEY_OUTBOX.c.effect_key,
                JOURNEY_OUTBOX.c.status,
                JOURNEY_OUTBOX.c.due_at,
                JOURNEY_RUNS.c.entered_at,
            ).join(JOURNEY_RUNS, JOURNEY_RUNS.c.run_id == JOURNEY_OUTBOX.c.run_id)
        ).all()
    engine.dispose()
    sent = [row for row in rows if row.status == "sent"]
    lost = [row.effect_key for row in sent if row.effect_key not in arrivals]
    queued = sorted(
        arrivals[r.effect_key] - _unix(r.due_at) for r in sent if r.effect_key in arrivals
    )
    entered = sorted(
        arrivals[r.effect_key] - _unix(r.entered_at) for r in sent if r.effect_key in arrivals
    )
    times = sorted(arrivals.values())
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    rate = len(times) / span if span else float("nan")
    result = {
        "config": name,
        "customers": total,
        "enrol_s": round(enrol, 1),
        "sent": len(sent),
        "suppressed": sum(row.status == "suppressed" for row in rows),
        "dead": sum(row.status == "dead" for row in rows),
        "sends_per_s": round(rate, 1),
        "all_done_s": round(elapsed, 1),
        "delay_queued_p50_s": round(_quantile(queued, 0.5), 2),
        "delay_queued_p99_s": round(_quantile(queued, 0.99), 2),
        "delay_entered_p99_s": round(_quantile(entered, 0.99), 2),
        "duplicates": lines - len(arrivals),
        "losses": len(lost),
        "target_per_s": TARGETS[sink],
    }
    print(json.dumps(result), flush=True)
    return result


def _unix(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _database(server_url: str | None, name: str) -> str:
    assert server_url is not None
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--store-customers",
        type=int,
        default=1_000_000,
        help="size of the segments demo store the customers come from",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--configs", default="sqlite:1,postgres:1,postgres:2,postgres:4")
    parser.add_argument("--sinks", default="webhook,smtp")
    parser.add_argument("--batch", type=int, default=2000)
    arguments = parser.parse_args()
    store_home = prepare(arguments.data_dir, arguments.store_customers)
    ids = customer_ids(store_home, arguments.customers)
    configs = [
        (kind, int(count))
        for kind, count in (item.split(":") for item in arguments.configs.split(","))
    ]
    results = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-journeys-") as work:
        pg_url = None
        if any(kind == "postgres" for kind, _ in configs):
            from tests.postgres import postgres_server

            pg_url = stack.enter_context(postgres_server())
        for kind, count in configs:
            for sink in arguments.sinks.split(","):
                results.append(
                    run_config(
                        kind, count, sink, ids, store_home, pg_url, Path(work), arguments.batch
                    )
                )
    print("\nconfig                     sent   sends/s  target  p99 queued->arrived  dup  lost")
    for r in results:
        print(
            f"{r['config']:<24} {r['sent']:>8} {r['sends_per_s']:>9} {r['target_per_s']:>7} "
            f"{r['delay_queued_p99_s']:>19} {r['duplicates']:>4} {r['losses']:>5}"
        )


if __name__ == "__main__":
    main()
