"""Ingest throughput: perennial's full ingest against a bare DuckDB copy of the same rows.

For each format (CSV, Parquet) the same order file is

* copied by a bare DuckDB (``COPY (SELECT * FROM read_csv(path, header=true)) TO
  'out.parquet' (FORMAT parquet)``, likewise ``read_parquet``) in a fresh connection with
  the same thread count as perennial's (the *peer*), and
* ingested with ``perennial.ingest.pipeline.ingest_file(path, Settings(home=<fresh>),
  table="orders")`` (*ours*: read, validate, stage, deduplicate by key, quarantine,
  commit); every row must be accepted, or the run fails.

Each measurement runs in its own fresh interpreter, so its peak RSS (VmHWM, imports
included) is its own and no cache of a previous run helps it. Wall and CPU time cover
the copy / the ``ingest_file`` call only. The target (issue text): ours within 3x of
the peer's time, memory bounded. Results: ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/bench_ingest.py                    # 10 M rows, csv + parquet
    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000     # quick
    .venv/bin/python benchmarks/bench_ingest.py --repeat 3 --phases
    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 --phases --profile data/prof

``--phases`` and ``--profile`` add one instrumented run of ours per format (never one
of the timed runs): time per pipeline phase and per SQL statement, and a cProfile
written to ``<PROFILE>.<format>.txt``. The generated files are cached in ``--data-dir``
(git-ignored), keyed by row count. The code measured is a copy of the importable
``perennial`` package taken at the start (``--live-src`` to import the working tree in
every run instead); its commit, uncommitted changes and a content hash are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = ROOT / "data"
THREADS = 2
"""Thread count of both sides (perennial's ``duckdb_threads`` default)."""
TARGET_RATIO = 3.0
NOW = datetime(2026, 11, 23, tzinfo=UTC)
"""Ingest clock: the generated orders end on 2026-11-01, so none is 'in the future'."""
_START = int(datetime(2024, 11, 1, tzinfo=UTC).timestamp())
_END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
FORMATS = ("csv", "parquet")
DATA_VERSION = "v2"
"""Part of the cached files' names: bump it when the generator changes."""


# --------------------------------------------------------------------------- data


def orders_table(rows: int, *, seed: int = 20261123) -> Any:
    """``rows`` synthetic orders in the canonical orders schema (pyarrow Table), vectorised.

    ~1 M customers with skewed order counts, two years of times (sorted, as an export
    would be), log-normal amounts, mostly paid, ~15 % with a coupon, four channels.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    customers = max(1, min(1_000_000, rows // 10))

    def ids(prefix: str, numbers: Any, width: int) -> Any:
        text = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, "0")
        return pc.binary_join_element_wise(pa.scalar(prefix), text, "")

    weights = rng.lognormal(0.0, 1.0, customers)
    customer = rng.choice(customers, size=rows, p=weights / weights.sum())
    seconds = np.sort(rng.integers(_START, _END, size=rows, dtype=np.int64))
    placed_at = pa.array(seconds, pa.int64()).cast(pa.timestamp("s")).cast(pa.timestamp("us"))
    amount = np.round(np.clip(rng.lognormal(5.0, 0.8, rows), 0.5, 50_000.0), 2)
    currency = rng.choice(np.array(["CNY", "USD", "HKD"]), size=rows, p=[0.97, 0.02, 0.01])
    status = rng.choice(
        np.array(["paid", "refunded", "cancelled"]), size=rows, p=[0.90, 0.06, 0.04]
    )
    coupons = pa.array(["NEW10", "VIP20", "SPRING15", "SUMMER5", "BDAY30", "FLASH50", "SAVE8"])
    coupon_index = rng.integers(0, len(coupons), size=rows)
    no_coupon = rng.random(rows) >= 0.15
    coupon = pc.take(coupons, pa.array(coupon_index, mask=no_coupon))
    channel = rng.choice(
        np.array(["app", "mini-program", "web", "store"]), size=rows, p=[0.45, 0.25, 0.2, 0.1]
    )
    return pa.table(
        {
            "order_id": ids("O", np.arange(1, rows + 1), 10),
            "customer_id": ids("C", customer + 1, 8),
            "placed_at": placed_at.cast(pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "currency": pa.array(currency, pa.string()),
            "status": pa.array(status, pa.string()),
            "item_count": pa.array(rng.geometric(0.45, size=rows), pa.int64()),
            "coupon_code": coupon,
            "channel": pa.array(channel, pa.string()),
        }
    )


def ensure_data(rows: int, data_dir: Path, formats: Sequence[str]) -> dict[str, Path]:
    """The cached source files for ``rows`` rows, generated once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {fmt: data_dir / f"orders-{DATA_VERSION}-{rows}.{fmt}" for fmt in formats}
    missing = [fmt for fmt, path in paths.items() if not path.is_file()]
    if not missing:
        return paths
    started = time.perf_counter()
    print(f"generating {rows:,} orders ({', '.join(missing)}) in {data_dir} ...", flush=True)
    table = orders_table(rows)
    for fmt in missing:
        temporary = paths[fmt].with_suffix(f".{fmt}.tmp")
        _WRITERS[fmt](table, temporary)
        temporary.replace(paths[fmt])
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    return paths


def _write_parquet(table: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    amount = table.column("amount").cast(pa.decimal128(18, 4), safe=False)
    table = table.set_column(table.schema.get_field_index("amount"), "amount", amount)
    pq.write_table(table, path)


def _write_csv(table: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    seconds = table.column("placed_at").cast(pa.timestamp("s", tz="UTC"))
    text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
    table = table.set_column(table.schema.get_field_index("placed_at"), "placed_at", text)
    # No quotes anywhere, header included: no value needs them (as in most id/number exports).
    options = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, sink, options)


_WRITERS: dict[str, Callable[[Any, Path], None]] = {"csv": _write_csv, "parquet": _write_parquet}


# --------------------------------------------------------------------------- one measurement


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux that survives ``exec`` and would
    report the parent's peak (it holds the generated table) instead of the child's.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_peer(fmt: str, path: Path, scratch: Path, memory_limit: str | None) -> dict[str, Any]:
    """Bare DuckDB: read the file, write the same rows as one Parquet file."""
    import duckdb

    rss_start = _peak_rss_mb()
    out = scratch / "out.parquet"
    reader = "read_csv(?, header = true)" if fmt == "csv" else "read_parquet(?)"
    cpu, started = _cpu_seconds(), time.perf_counter()
    config: dict[str, Any] = {"threads": THREADS}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(config=config)
    con.execute(f"COPY (SELECT * FROM {reader}) TO '{out}' (FORMAT parquet)", [str(path)])
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchall()[0][0]
    con.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": int(rows), "rss_start_mb": rss_start}


def run_ours(
    path: Path,
    scratch: Path,
    *,
    memory_limit: str | None = None,
    phases: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    """perennial's full ingest into a fresh, empty home."""
    import perennial
    from perennial.config import Settings
    from perennial.ingest import pipeline

    timer = PhaseTimer.install(pipeline) if phases else None
    rss_start = _peak_rss_mb()
    limit = {"duckdb_memory_limit": memory_limit} if memory_limit else {}
    settings = Settings(home=scratch / "home", duckdb_threads=THREADS, **limit)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu, started = _cpu_seconds(), time.perf_counter()
    report = pipeline.ingest_file(path, settings, table="orders", now=NOW)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    if profiler is not None:
        profiler.disable()
        _write_profile(profiler, profile, seconds)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": report.accepted,
        "perennial": str(Path(perennial.__file__).parent),
        "rss_start_mb": rss_start,
        "report": {
            "rows_read": report.rows_read,
            "accepted": report.accepted,
            "quarantined": report.quarantined,
            "duplicates_in_batch": report.duplicates_in_batch,
            "already_stored": report.already_stored,
            "quarantine_reasons": report.quarantine_reasons,
        },
    }
    if timer is not None:
        result["phases"] = timer.summary(seconds)
        expected = [_READ, *(phase for phase, _ in _PHASES), _COMMIT]
        result["phases_not_found"] = [p for p in expected if p not in timer.seconds]
    return result


def _write_profile(profiler: Any, path: Path, seconds: float) -> None:
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    path.write_text(f"# ingest_file wall time {seconds:.2f} s\n{buffer.getvalue()}")


_PHASES = (
    # (phase, names in perennial.ingest.pipeline that do its work in some version of it;
    #  "Class.method" patches the method). Names a version lacks are skipped.
    ("2 validate (convert + check)", ("validate_batch",)),
    ("3 stage (write accepted rows)", ("_write_accepted", "PartitionedWriter.close")),
    ("4 merge (dedupe + write table)", ("_merge", "merge_rows")),
    ("5 quarantine", ("write_quarantine", "_rejected_rows", "_quarantine")),
    ("6 identities", ("resolve_identities",)),
)
_READ = "1 read (source -> Arrow batches)"
_STAGE = "3 stage (write accepted rows)"
_COMMIT = "7 commit manifest"
_OTHER = "8 other (setup, report, cleanup)"


class PhaseTimer:
    """Wall time per ingest phase, by wrapping the pipeline's collaborators (no src changes).

    SQL statements on the pipeline's DuckDB connection are timed one by one, labelled by
    what they create, and listed under the phase that issued them.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.current: str | None = None
        self.peak_mb: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1
        self.peak_mb[name] = _peak_rss_mb()  # the process's peak so far, as the call ends

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.current == name:  # nested in its own phase: counted by the outer call
                return function(*args, **kwargs)
            outer, self.current = self.current, name
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)
                self.current = outer

        return wrapper

    def add_sql(self, sql: str, seconds: float) -> None:
        self.add(f"{self.current or _OTHER}{_SQL}{_sql_label(sql)}", seconds)

    @classmethod
    def install(cls, pipeline: Any) -> PhaseTimer:
        import polars as pl

        from perennial.store.warehouse import Transaction

        timer = cls()
        original_read = pipeline.read_source

        def read_source(*args: Any, **kwargs: Any) -> Any:
            names, batches = original_read(*args, **kwargs)
            return names, timer.iterate(_READ, batches)

        pipeline.read_source = read_source
        for phase, names in _PHASES:
            for name in names:
                *owner_name, attribute = name.split(".")
                owner = getattr(pipeline, owner_name[0], None) if owner_name else pipeline
                if owner is not None and hasattr(owner, attribute):
                    setattr(owner, attribute, timer.timed(phase, getattr(owner, attribute)))
        pl.DataFrame.write_parquet = timer.timed(_STAGE, pl.DataFrame.write_parquet)  # type: ignore[method-assign]
        Transaction.commit = timer.timed(_COMMIT, Transaction.commit)
        original_connect = pipeline.connect
        pipeline.connect = lambda settings: _TimedConnection(original_connect(settings), timer)
        return timer

    def iterate(self, name: str, items: Iterator[Any]) -> Iterator[Any]:
        while True:
            outer, self.current = self.current, name
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.add(name, time.perf_counter() - started)
                self.current = outer
            yield item

    def summary(self, total: float) -> dict[str, dict[str, float]]:
        """Phases in pipeline order, each followed by its SQL statements, slowest first."""

        def entry(name: str, seconds: float | None = None) -> dict[str, float]:
            seconds = self.seconds[name] if seconds is None else seconds
            return {
                "seconds": seconds,
                "share": seconds / total,
                "calls": self.calls.get(name, 1),
                "peak_rss_mb": self.peak_mb.get(name, _peak_rss_mb()),
            }

        phases = sorted(n for n in self.seconds if _SQL not in n)
        top = sum(self.seconds[n] for n in phases)
        self.seconds[_OTHER] = self.seconds.get(_OTHER, 0.0) + total - top
        rows: dict[str, dict[str, float]] = {}
        for phase in [*phases, _OTHER]:
            rows[phase] = entry(phase)
            statements = [n for n in self.seconds if n.startswith(phase + _SQL)]
            for name in sorted(statements, key=lambda n: -self.seconds[n]):
                rows[f"  {phase[0]}. sql: {name.split(_SQL, 1)[1]}"] = entry(name)
        return rows


_SQL = " | sql: "


_CREATED = re.compile(
    r"CREATE (?:OR REPLACE )?(?:TEMP |TEMPORARY )?(TABLE|VIEW) (\S+)", re.IGNORECASE
)


def _sql_label(sql: str) -> str:
    words = " ".join(sql.split())
    upper = words.upper()
    created = _CREATED.match(words)
    if created:
        return f"create {created.group(1).lower()} {created.group(2)}"
    if upper.startswith("COPY"):
        return "COPY ... TO (write table files)"
    if upper.startswith(("ALTER", "UPDATE")):
        return " ".join(words.split()[:3])
    if "count(*)" in words:
        return "count " + words.split("FROM", 1)[1].split()[0]
    return words[:40]


class _TimedConnection:
    """A DuckDB connection that times each statement (``execute`` and ``sql`` results)."""

    def __init__(self, con: Any, timer: PhaseTimer) -> None:
        self._con = con
        self._timer = timer

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            self._timer.add_sql(sql, time.perf_counter() - started)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return _TimedRelation(self._con.sql(sql, *args, **kwargs), sql, self._timer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class _TimedRelation:
    """A lazy relation from ``sql``: the call that runs it (fetch, to_arrow...) is timed."""

    def __init__(self, relation: Any, sql: str, timer: PhaseTimer) -> None:
        self._relation = relation
        self._sql = sql
        self._timer = timer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._relation, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._timer.add_sql(self._sql, time.perf_counter() - started)

        return call


def run_one(args: argparse.Namespace) -> int:
    """Child process: one measurement, one JSON line on stdout."""
    path = Path(args.path)
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{args.one}-", dir=args.data_dir))
    try:
        if args.one == "peer":
            result = run_peer(args.format, path, scratch, args.memory_limit)
        else:
            profile = Path(args.profile) if args.profile else None
            result = run_ours(
                path, scratch, memory_limit=args.memory_limit, phases=args.phases, profile=profile
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- driver


@dataclass
class Measurement:
    seconds: float
    rows: int
    peak_rss_mb: float
    extra: dict[str, Any]


def measure(
    kind: str, fmt: str, path: Path, args: argparse.Namespace, *, instrumented: bool = False
) -> Measurement:
    """Run one measurement in a fresh interpreter (its own peak RSS, no warm caches of ours).

    ``instrumented`` runs (phase timers, cProfile) are extra runs of ours, never the timed ones.
    """
    command = [
        sys.executable, str(Path(__file__).resolve()), "--one", kind, "--format", fmt,
        "--path", str(path), "--data-dir", str(args.data_dir),
    ]  # fmt: skip
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    if instrumented and args.phases:
        command.append("--phases")
    if instrumented and args.profile:
        command += ["--profile", f"{args.profile}.{fmt}.txt"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERENNIAL_")}
    env["PERENNIAL_CONFIG"] = os.devnull  # no perennial.toml from the working directory
    if args.source_copy is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(args.source_copy), env.get("PYTHONPATH", "")])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{kind} {fmt} failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Measurement(result.pop("seconds"), result.pop("rows"), result.pop("peak_rss_mb"), result)


@dataclass
class Row:
    fmt: str
    rows: int
    peer: list[Measurement]
    ours: list[Measurement]

    @property
    def peer_seconds(self) -> float:
        return statistics.median(m.seconds for m in self.peer)

    @property
    def ours_seconds(self) -> float:
        return statistics.median(m.seconds for m in self.ours)

    @property
    def ratio(self) -> float:
        return self.ours_seconds / self.peer_seconds

    def cpu(self, runs: list[Measurement]) -> float:
        return float(statistics.median(m.extra["cpu_seconds"] for m in runs))


def print_table(results: list[Row], repeat: int) -> None:
    timing = f"median of {repeat} runs" if repeat > 1 else "1 run each"
    print(f"\nresults ({timing}; each run in a fresh process):")
    print(
        f"| format | rows | peer s | peer rows/s | ours s | ours rows/s | ratio ours/peer "
        f"| peak RSS peer MB | peak RSS ours MB | within {TARGET_RATIO:g}x |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        peer_rss = max(m.peak_rss_mb for m in r.peer)
        ours_rss = max(m.peak_rss_mb for m in r.ours)
        met = "yes" if r.ratio <= TARGET_RATIO else "NO"
        print(
            f"| {r.fmt} | {r.rows:,} | {r.peer_seconds:.2f} | {r.rows / r.peer_seconds:,.0f} "
            f"| {r.ours_seconds:.2f} | {r.rows / r.ours_seconds:,.0f} | {r.ratio:.2f}x "
            f"| {peer_rss:,.0f} | {ours_rss:,.0f} | {met} |"
        )


def print_contention(results: list[Row]) -> None:
    """Best-of wall times and CPU times: what to read when the machine was busy.

    The peer runs on both cores, ours mostly on one; other load on the machine slows
    the peer's wall time more, which flatters the median ratio.
    """
    print("\nbest run and CPU time (user+sys) of the same runs:")
    print(
        "| format | best peer s | best ours s | best ratio | CPU peer s | CPU ours s "
        "| CPU ratio | ours CPU/wall | peer CPU/wall |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        best_peer = min(m.seconds for m in r.peer)
        best_ours = min(m.seconds for m in r.ours)
        cpu_peer, cpu_ours = r.cpu(r.peer), r.cpu(r.ours)
        print(
            f"| {r.fmt} | {best_peer:.2f} | {best_ours:.2f} | {best_ours / best_peer:.2f}x "
            f"| {cpu_peer:.1f} | {cpu_ours:.1f} | {cpu_ours / cpu_peer:.2f}x "
            f"| {cpu_ours / r.ours_seconds:.2f} | {cpu_peer / r.peer_seconds:.2f} |"
        )


def print_phases(fmt: str, ours: Measurement) -> None:
    phases = ours.extra.get("phases")
    if not phases:
        return
    print(f"\nphases of ours, {fmt} ({ours.seconds:.2f} s):")
    print("| phase | seconds | share | calls | peak RSS so far MB |")
    print("|---|---:|---:|---:|---:|")
    for name, p in phases.items():
        print(
            f"| {name.strip()} | {p['seconds']:.2f} | {p['share']:.0%} | {p['calls']:.0f} "
            f"| {p['peak_rss_mb']:,.0f} |"
        )
    if ours.extra.get("phases_not_found"):
        missing = ", ".join(ours.extra["phases_not_found"])
        print(f"(not seen in this pipeline version; any such work is in 'other': {missing})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        return run_one(args)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SystemExit(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    paths = ensure_data(args.rows, args.data_dir, formats)
    package = _perennial_package()
    args.source_copy = None
    if not args.live_src:
        args.source_copy = Path(tempfile.mkdtemp(prefix="_src-", dir=args.data_dir))
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(package, args.source_copy / "perennial", ignore=ignore)
    print(f"code measured: {_describe_source(package, args.source_copy)}")
    if args.source_copy is not None:
        print(f"  (a copy taken now, so edits to {package} during the run do not mix in)")
    try:
        return _run_all(args, formats, paths)
    finally:
        if args.source_copy is not None:
            shutil.rmtree(args.source_copy, ignore_errors=True)


def _perennial_package() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("perennial")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("perennial is not importable; run with the project's .venv")
    return Path(next(iter(spec.submodule_search_locations)))


def _describe_source(package: Path, copy: Path | None) -> str:
    """Commit, uncommitted changes and a content hash of the Python files measured."""
    import hashlib

    measured = copy / "perennial" if copy is not None else package
    digest = hashlib.sha1(usedforsecurity=False)
    for file in sorted(measured.rglob("*.py")):
        digest.update(file.relative_to(measured).as_posix().encode() + b"\0" + file.read_bytes())
    text = f"{package} (sha1 of its .py files {digest.hexdigest()[:12]})"

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package), *command], capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if head and not git("ls-files", "__init__.py"):
        text += ", not tracked by the git checkout it sits in"
    elif head:
        changed = git("status", "--porcelain", "--", ".").splitlines()
        text += f", commit {head}" + (
            f" + {len(changed)} uncommitted change(s): " + ", ".join(line[3:] for line in changed)
            if changed
            else " (clean)"
        )
    return text


def _run_all(args: argparse.Namespace, formats: list[str], paths: dict[str, Path]) -> int:
    results = [timed_runs(fmt, paths[fmt], args) for fmt in formats]
    print_table(results, args.repeat)
    print_contention(results)
    if args.phases or args.profile:
        for fmt in formats:
            print(f"\ninstrumented run of ours, {fmt} ...", flush=True)
            ours = measure("ours", fmt, paths[fmt], args, instrumented=True)
            print_phases(fmt, ours)
            if args.profile:
                print(f"cProfile written to {args.profile}.{fmt}.txt")
    met = all(r.ratio <= TARGET_RATIO for r in results)
    print(
        f"\ntarget (ours within {TARGET_RATIO:g}x of the bare copy): {'MET' if met else 'NOT MET'}"
    )
    return 0


def timed_runs(fmt: str, path: Path, args: argparse.Namespace) -> Row:
    """``--repeat`` alternating runs of the peer and ours on one file."""
    row = Row(fmt, args.rows, [], [])
    for run in range(1, args.repeat + 1):
        for kind, runs in (("peer", row.peer), ("ours", row.ours)):
            m = measure(kind, fmt, path, args)
            runs.append(m)
            print(
                f"{fmt} run {run} {kind}: {m.seconds:.2f} s (CPU {m.extra['cpu_seconds']:.2f} s), "
                f"{m.rows:,} rows, load {os.getloadavg()[0]:.2f}, "
                f"peak RSS {m.peak_rss_mb:,.0f} MB "
                f"(after imports {m.extra['rss_start_mb']:,.0f} MB)"
                + (f", perennial from {m.extra['perennial']}" if "perennial" in m.extra else ""),
                flush=True,
            )
            # Honest comparison: both sides must have written every row.
            assert m.rows == args.rows, (
                f"{kind} {fmt}: {m.rows:,} rows stored of {args.rows:,} ({m.extra.get('report')})"
            )
    return row


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument(
        "--phases", action="store_true", help="time ours by phase and by SQL statement"
    )
    parser.add_argument(
        "--profile", default=None, help="cProfile ours; writes <PROFILE>.<format>.txt"
    )
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit for both sides (ours: Settings.duckdb_memory_limit); "
        "default: each side's own default",
    )
    parser.add_argument(
        "--live-src",
        action="store_true",
        help="import perennial from the working tree in every run instead of a copy taken "
        "at the start",
    )
    parser.add_argument("--one", choices=["peer", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    return args


if __name__ == "__main__":
    sys.exit(main())
