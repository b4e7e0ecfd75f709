"""Track API throughput: durable events/s acknowledged, against the framework's floor.

Starts the real server (``perennial serve`` on uvicorn, loopback, a fresh home in a
temp folder, its background drainer on as in production) and drives it with
``--clients`` concurrent async httpx clients for ``--seconds`` per phase:

1. **floor**: ``GET /v1/ping``, a constant answer: what the framework, the middleware
   and this load generator cost per request on this machine;
2. **track**: ``POST /v1/track`` with ``--batch`` events per request (each event with
   its own ``event_id``, a timestamp and two properties). A ``202`` means the batch is
   durable (fsynced in the SQLite inbox), so events/s counts durable events only.

Reported per phase: requests/s, p50 and p99 latency per request, errors, and the CPU
the server process and the load generator spent per second (from ``/proc``: the
generator's share shows when it, not the server, is the limit); for track also
events/s and its requests/s as a share of the floor's. After the load the script
waits for the drainer to empty the inbox and checks that the warehouse holds exactly
the acknowledged events (no loss, no double). The load generator shares the two cores
with the server: the same-run floor is the fair yardstick. Target (issue 4): >= 5,000
events/s durable. Results: ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/bench_track.py                       # 16 clients, 10 s each
    .venv/bin/python benchmarks/bench_track.py --no-background-drain # acknowledging alone
    .venv/bin/python benchmarks/bench_track.py --clients 32 --seconds 15 --batch 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import orjson

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.ingest.drain import drain_inbox
from perennial.ingest.inbox import inbox_counts
from perennial.store.operational import create_engine_for, migrate
from perennial.store.warehouse import Warehouse

TARGET_EVENTS_PER_SECOND = 5_000
_CLI = "from perennial.cli.app import main; main()"


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    events: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _operator_token(settings: Settings) -> str:
    migrate(settings)
    engine = create_engine_for(settings)
    with engine.begin() as connection:
        issued = create_api_key(
            connection, name="bench", roles=frozenset({Role.OPERATOR}), created_by="bench"
        )
    engine.dispose()
    return issued.token


def _start_server(home: Path, port: int, drain_seconds: float) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "PERENNIAL_HOME": str(home),
        "PERENNIAL_INGEST_DRAIN_SECONDS": str(drain_seconds),
    }
    log = (home.parent / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", _CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
        if server.poll() is not None:
            raise SystemExit((home.parent / "server.log").read_text())
    server.kill()
    raise SystemExit("the server did not start within 120 s")


def _batch_body(client: str, number: int, size: int) -> bytes:
    events = [
        {
            "event_id": f"c{client}-r{number}-e{i}",
            "customer_id": f"C{(number * 31 + i) % 100_000}",
            "event_type": "page_view",
            "ts": "2026-11-01T08:00:00+08:00",
            "properties": {"path": f"/p/{i % 50}", "referrer": "search"},
        }
        for i in range(size)
    ]
    return orjson.dumps({"events": events})


Send = Callable[[httpx.AsyncClient, int, int], Awaitable[int | None]]
"""One request by ``client`` (its ``number``-th): the events it stored, or None on error."""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_phase(phase: Phase, server: int, clients: int, seconds: float, send: Send) -> None:
    """Run a phase, recording the CPU the server and this load generator spent on it."""
    server_before, client_before = _cpu_seconds(server), time.process_time()
    asyncio.run(_run_phase(phase, clients, seconds, send))
    phase.server_cpu_s = _cpu_seconds(server) - server_before
    phase.client_cpu_s = time.process_time() - client_before


async def _run_phase(phase: Phase, clients: int, seconds: float, send: Send) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as session:
        deadline = time.perf_counter() + seconds

        async def worker(client: int) -> None:
            number = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                stored = await send(session, client, number)
                elapsed = (time.perf_counter() - started) * 1000
                if stored is None:
                    phase.errors += 1
                else:
                    phase.latencies_ms.append(elapsed)
                    phase.events += stored
                number += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(clients)))
        phase.seconds = time.perf_counter() - started


def _measure(
    base: str, token: str, server: int, args: argparse.Namespace
) -> tuple[Phase, Phase, Phase]:
    """Warm-up (lazy imports, first drains), then the floor, then track."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def ping(session: httpx.AsyncClient, _client: int, _number: int) -> int | None:
        response = await session.get(f"{base}/v1/ping")
        return 0 if response.status_code == 200 else None

    def track(prefix: str) -> Send:
        async def send(session: httpx.AsyncClient, client: int, number: int) -> int | None:
            body = _batch_body(f"{prefix}{client}", number, args.batch)
            response = await session.post(f"{base}/v1/track", content=body, headers=headers)
            if response.status_code != 202:
                return None
            return int(response.json()["accepted"])

        return send

    warm, floor, tracked = Phase("warm-up"), Phase("floor"), Phase("track")
    _timed_phase(warm, server, 2, 3.0, track("w"))
    _timed_phase(floor, server, args.clients, args.seconds, ping)
    _timed_phase(tracked, server, args.clients, args.seconds, track("c"))
    return warm, floor, tracked


def _drain_here(settings: Settings) -> tuple[float, int]:
    """Drain the inbox in this process (``perennial drain``): seconds, items."""
    engine = create_engine_for(settings)
    try:
        started = time.perf_counter()
        report = drain_inbox(settings, engine)
        return time.perf_counter() - started, report.items
    finally:
        engine.dispose()


def _wait_drained(settings: Settings, timeout: float) -> float:
    """Seconds until the server's drainer has emptied the inbox."""
    engine = create_engine_for(settings)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with engine.connect() as connection:
                if inbox_counts(connection)["pending"] == 0:
                    return time.perf_counter() - started
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise SystemExit(f"the inbox was not drained within {timeout:.0f} s")


def _stored_events(settings: Settings) -> tuple[int, int]:
    paths = Warehouse(settings.warehouse).snapshot().paths("events")
    row = duckdb.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?)", [paths]
    ).fetchall()[0]
    return int(row[0]), int(row[1])


def _git_sha() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def _report(floor: Phase, track: Phase, args: argparse.Namespace, drain: str) -> None:
    events_per_second = track.events / track.seconds
    print(f"# bench_track  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  git {_git_sha()}")
    print(
        f"clients {args.clients}, {args.seconds:.0f} s per phase, {args.batch} events per "
        f"request, background drain {'off' if args.no_background_drain else 'on'}, "
        f"load average before {args.load_before}"
    )
    print()
    print(
        "| phase | requests | req/s | p50 ms | p99 ms | errors | events/s (durable) "
        "| server CPU s/s | client CPU s/s | server CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for phase in (floor, track):
        events = f"{events_per_second:,.0f}" if phase is track else "-"
        requests = max(1, len(phase.latencies_ms))
        print(
            f"| {phase.name} | {len(phase.latencies_ms):,} | {phase.requests_per_second:,.0f} | "
            f"{phase.percentile(0.5):.1f} | {phase.percentile(0.99):.1f} | {phase.errors} | "
            f"{events} | {phase.server_cpu_s / phase.seconds:.2f} | "
            f"{phase.client_cpu_s / phase.seconds:.2f} | "
            f"{phase.server_cpu_s / requests * 1000:.2f} |"
        )
    share = track.requests_per_second / floor.requests_per_second
    met = "MET" if events_per_second >= TARGET_EVENTS_PER_SECOND else "NOT MET"
    print()
    print(f"track requests/s = {share:.1%} of the floor's; track p99 / floor p99 = "
          f"{track.percentile(0.99) / floor.percentile(0.99):.1f}x")  # fmt: skip
    print(
        f"durable events/s {events_per_second:,.0f} vs target {TARGET_EVENTS_PER_SECOND:,}: {met}"
    )
    print(drain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--no-background-drain",
        action="store_true",
        help="Measure acknowledging alone: the server does not drain; the inbox is drained "
        "after the load, in this process, and that drain is timed.",
    )
    args = parser.parse_args()
    args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-track-") as folder:
        home = Path(folder) / "home"
        settings = Settings(home=home)
        token = _operator_token(settings)
        port = _free_port()
        server = _start_server(home, port, 0 if args.no_background_drain else 1.0)
        try:
            warm, floor, track = _measure(f"http://127.0.0.1:{port}", token, server.pid, args)
            if not args.no_background_drain:
                waited = _wait_drained(settings, timeout=300)
                drain = f"inbox drained {waited:.1f} s after the load ended"
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        if args.no_background_drain:
            seconds, items = _drain_here(settings)
            drain = (
                f"drained afterwards: {items:,} items in {seconds:.1f} s ({items / seconds:,.0f}/s)"
            )
        rows, distinct = _stored_events(settings)
        acknowledged = warm.events + track.events
        _report(floor, track, args, drain)
        print(
            f"warehouse: {rows:,} events, {distinct:,} distinct ids, {acknowledged:,} acknowledged"
        )
        if not rows == distinct == acknowledged:
            raise SystemExit("the warehouse does not hold exactly the acknowledged events")


if __name__ == "__main__":
    main()
