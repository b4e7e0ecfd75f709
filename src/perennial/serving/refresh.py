"""``refresh_serving``: rebuild the serving store from the warehouse, all at once.

The analytical store answers "every customer's RFM" in a second but "this one
customer" in tens of milliseconds; the API needs the opposite. So a refresh
copies what the API reads into one SQLite file shaped for it (see
:mod:`perennial.serving.schema`): the 360 documents, the search index, each
customer's stage history and timeline, and the lifecycle board's tables.

It is built under a temporary name beside the target and renamed over it in one
``os.replace`` (after an fsync), so a reader opens the old file or the new one,
never a half-built one; a failed refresh leaves the old file as it was.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.config import Settings
from perennial.errors import StoreError
from perennial.ingest.identity_resolution import IDENTITIES_SCHEMA, IDENTITIES_TABLE
from perennial.lifecycle.flows import UNMATCHED
from perennial.lifecycle.history import (
    STAGE_HISTORY_TABLE,
    STAGE_TRANSITIONS_TABLE,
    history_table,
)
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.lifecycle.rfm_config import RfmConfig, default_rfm_config
from perennial.lifecycle.stage_model import StageModel
from perennial.lifecycle.tiers import VALUE_TIER_LABELS
from perennial.models.predictions import PREDICTIONS_SCHEMA, PREDICTIONS_TABLE
from perennial.serving import board_tables
from perennial.serving.documents import (
    DOCUMENT_COLUMN,
    MACROS,
    DocumentCompressor,
    customers_query,
    timeline_query,
)
from perennial.serving.schema import FORMAT_VERSION, create_indexes, create_tables
from perennial.serving.transfer import copy_query
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Snapshot, Warehouse

__all__ = ["ServingRefreshError", "ServingSummary", "refresh_serving"]

_STALE_TEMPORARY = timedelta(hours=6)


class ServingRefreshError(StoreError):
    """The warehouse lacks what a serving store is built from, or it disagrees with the model."""


@dataclass(frozen=True)
class ServingSummary:
    path: Path
    model: str
    as_of: datetime
    """The profiles' as-of instant."""
    customers: int
    timeline_items: int
    transitions: int
    history: tuple[date, date] | None
    """First and last day of the model's stage history in the store; None without one."""
    seconds: float
    bytes: int


def refresh_serving(
    settings: Settings,
    stage_model: StageModel,
    *,
    rfm_config: RfmConfig | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ServingSummary:
    """Rebuild ``settings.serving_database`` from the warehouse's newest version.

    ``stage_model`` must be the model the stored profiles were computed with (its
    labels, KPI roles and history are used); a profile stage it does not know
    raises :class:`ServingRefreshError`. ``on_step`` hears each step's name.
    """
    started = time.perf_counter()
    report = on_step or (lambda _step: None)
    target = settings.serving_database
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    snapshot = Warehouse(settings.warehouse).snapshot()
    profiles_paths = snapshot.paths(PROFILES_TABLE)
    if not profiles_paths:
        raise ServingRefreshError(
            f"{settings.warehouse}: no profiles to serve; run `perennial lifecycle compute` first"
        )
    zone = stage_model.timezone or settings.default_timezone
    with open_backend(settings) as backend, _temporary(target) as building:
        duck = backend.connection.con
        _register_views(backend, snapshot, stage_model, rfm_config or default_rfm_config())
        as_of = _check_profiles(duck, stage_model)
        as_of_day = (as_of.astimezone(ZoneInfo(zone)) - timedelta(microseconds=1)).date()
        with _sqlite(building) as sqlite:
            counts = _fill(duck, sqlite, stage_model, rfm_config, zone, as_of_day, report)
            _write_meta(sqlite, stage_model, zone, as_of, as_of_day, snapshot, counts)
            report("indexes")
            create_indexes(sqlite)
            sqlite.execute("PRAGMA analysis_limit = 1000")
            sqlite.execute("ANALYZE")
            sqlite.commit()
        _publish(building, target)
    return ServingSummary(
        path=target,
        model=stage_model.name,
        as_of=as_of,
        customers=counts.customers,
        timeline_items=counts.timeline,
        transitions=counts.transitions,
        history=counts.history,
        seconds=time.perf_counter() - started,
        bytes=target.stat().st_size,
    )


@dataclass(frozen=True)
class _Counts:
    customers: int
    timeline: int
    transitions: int
    history: tuple[date, date] | None
    flow_stages: list[str]
    main_currency: str | None


def _fill(
    duck: duckdb.DuckDBPyConnection,
    sqlite: sqlite3.Connection,
    model: StageModel,
    rfm_config: RfmConfig | None,
    zone: str,
    as_of_day: date,
    report: Callable[[str], None],
) -> _Counts:
    create_tables(sqlite)
    sqlite.executemany(
        "INSERT INTO stages VALUES (?, ?, ?, ?, ?)",
        [(i, s.key, s.label_en, s.label_zh, s.kpi) for i, s in enumerate(model.stages)],
    )
    report("customers")
    profiles_schema = duck.sql("SELECT * FROM srv_profiles LIMIT 0").to_arrow_table().schema
    compressor = DocumentCompressor()
    customers = copy_query(
        duck,
        customers_query(profiles_schema),
        sqlite,
        "customers",
        params={"model": model.name},
        transforms={DOCUMENT_COLUMN: compressor},
    )
    if compressor.codec is not None:
        dictionary = base64.b64encode(compressor.codec.dictionary).decode()
        sqlite.execute("INSERT INTO meta VALUES ('document_dictionary', ?)", (dictionary,))
    report("search index")
    copy_query(duck, _LOOKUP, sqlite, "lookup")
    report("stage history")
    history = board_tables.write_stage_daily(duck, sqlite, as_of_day)
    transitions, flow_stages = board_tables.write_transitions(duck, sqlite, model.keys)
    report("orders and RFM")
    board_tables.write_revenue(duck, sqlite, zone)
    board_tables.write_purchases(duck, sqlite, zone)
    board_tables.write_rfm(duck, sqlite, rfm_config or default_rfm_config())
    report("timeline")
    timeline = copy_query(duck, timeline_query(), sqlite, "timeline")
    currency = sqlite.execute(
        "SELECT currency FROM revenue_daily GROUP BY currency ORDER BY sum(revenue) DESC LIMIT 1"
    ).fetchone()
    return _Counts(
        customers, timeline, transitions, history, flow_stages, currency[0] if currency else None
    )


_LOOKUP = """
    SELECT value, kind, customer_id FROM (
        SELECT identity_value AS value, identity_type AS kind, customer_id FROM srv_identities
        WHERE customer_id IS NOT NULL
        UNION SELECT customer_id, 'customer_id', customer_id FROM srv_profiles
        UNION SELECT phone, 'phone', customer_id FROM srv_customers WHERE phone IS NOT NULL
        UNION SELECT email, 'email', customer_id FROM srv_customers WHERE email IS NOT NULL
        UNION SELECT substr(identity_value, strpos(identity_value, ':') + 1), 'external_id',
            customer_id FROM srv_identities
        WHERE identity_type = 'external_id' AND customer_id IS NOT NULL
    )
    WHERE customer_id IN (SELECT customer_id FROM srv_profiles)
    ORDER BY value, kind, customer_id
"""


def _register_views(
    backend: Backend, snapshot: Snapshot, model: StageModel, rfm_config: RfmConfig
) -> None:
    """The warehouse tables as ``srv_*`` views of this snapshot, label tables and macros."""
    duck = backend.connection.con
    profiles_schema = pq.read_schema(snapshot.paths(PROFILES_TABLE)[0])
    tables = {
        "srv_profiles": backend.table(PROFILES_TABLE, snapshot, schema=profiles_schema),
        "srv_customers": backend.table("customers", snapshot),
        "srv_orders": backend.table("orders", snapshot),
        "srv_order_items": backend.table("order_items", snapshot),
        "srv_events": backend.table("events", snapshot),
        "srv_identities": backend.table(IDENTITIES_TABLE, snapshot, schema=IDENTITIES_SCHEMA),
        "srv_history": history_table(backend, snapshot, STAGE_HISTORY_TABLE, model.name),
        "srv_transitions": history_table(backend, snapshot, STAGE_TRANSITIONS_TABLE, model.name),
    }
    for name, expression in tables.items():
        duck.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS {backend.connection.compile(expression)}"
        )
    _register_predictions(backend, snapshot)
    for macro in MACROS:
        duck.execute(macro)
    stages = pa.table(
        {
            "key": [s.key for s in model.stages],
            "label_en": [s.label_en for s in model.stages],
            "label_zh": [s.label_zh for s in model.stages],
            "kpi": pa.array([s.kpi for s in model.stages], pa.string()),
        }
    )
    segments = {key: segment.label for key, segment in rfm_config.segments.items()}
    segments[rfm_config.no_orders.key] = rfm_config.no_orders.label
    duck.register("srv_stage_labels", stages)
    duck.register("srv_segment_labels", _labels({k: (v.en, v.zh) for k, v in segments.items()}))
    tiers = {tier.value: (label.en, label.zh) for tier, label in VALUE_TIER_LABELS.items()}
    duck.register("srv_tier_labels", _labels(tiers))


def _register_predictions(backend: Backend, snapshot: Snapshot) -> None:
    """``srv_predictions``: the stored predictions, or none (``perennial predict`` not run)."""
    duck = backend.connection.con
    if snapshot.paths(PREDICTIONS_TABLE):
        expression = backend.table(PREDICTIONS_TABLE, snapshot, schema=PREDICTIONS_SCHEMA)
        duck.execute(
            "CREATE OR REPLACE TEMP VIEW srv_predictions AS "
            + backend.connection.compile(expression)
        )
    else:
        duck.register("srv_predictions", PREDICTIONS_SCHEMA.empty_table())


def _labels(labels: dict[str, tuple[str, str]]) -> pa.Table:
    return pa.table(
        {
            "key": list(labels),
            "label_en": [en for en, _ in labels.values()],
            "label_zh": [zh for _, zh in labels.values()],
        }
    )


def _check_profiles(duck: duckdb.DuckDBPyConnection, model: StageModel) -> datetime:
    """The profiles' as-of; refuses profiles whose stages the model does not have."""
    stages = [row[0] for row in duck.sql("SELECT DISTINCT stage FROM srv_profiles").fetchall()]
    unknown = sorted(
        str(stage) for stage in stages if stage is not None and stage not in model.keys
    )
    if unknown:
        raise ServingRefreshError(
            f"the stored profiles have stages {', '.join(map(repr, unknown))} that stage model "
            f"{model.name!r} does not define; refresh with the model the profiles were "
            "computed with (--model)"
        )
    as_of = duck.sql("SELECT max(as_of) FROM srv_profiles").fetchall()[0][0]
    if not isinstance(as_of, datetime):
        raise ServingRefreshError("the stored profiles are empty; nothing to serve")
    return as_of.astimezone(UTC)


def _write_meta(
    sqlite: sqlite3.Connection,
    model: StageModel,
    zone: str,
    as_of: datetime,
    as_of_day: date,
    snapshot: Snapshot,
    counts: _Counts,
) -> None:
    history = counts.history
    reference = history[1] if history else as_of_day
    meta = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "timezone": zone,
        "profiles_as_of": as_of.isoformat(),
        "profiles_day": as_of_day.isoformat(),
        "as_of": reference.isoformat(),
        "history_first": history[0].isoformat() if history else None,
        "history_last": history[1].isoformat() if history else None,
        "refreshed_at": datetime.now(UTC).isoformat(),
        "warehouse_version": str(snapshot.version),
        "customers": str(counts.customers),
        "timeline_items": str(counts.timeline),
        "main_currency": counts.main_currency,
        "flow_stages": orjson.dumps(counts.flow_stages).decode(),
        "unmatched": UNMATCHED,
        "build_id": uuid.uuid4().hex,
    }
    sqlite.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))


@contextmanager
def _temporary(target: Path) -> Iterator[Path]:
    """A fresh file name beside ``target``; removed unless it was published."""
    building = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield building
    finally:
        for path in (building, building.with_name(building.name + "-journal")):
            path.unlink(missing_ok=True)


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection tuned for one writer building a file nobody reads yet."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "page_size = 8192",
            "journal_mode = OFF",
            "synchronous = OFF",
            "locking_mode = EXCLUSIVE",
            "cache_size = -262144",
            "temp_store = FILE",
        ):
            connection.execute(f"PRAGMA {pragma}")
        connection.execute("BEGIN")
        yield connection
    finally:
        if connection.in_transaction:
            connection.rollback()
        connection.close()


def _publish(building: Path, target: Path) -> None:
    """fsync the finished file, rename it over ``target`` and fsync the folder."""
    descriptor = os.open(building, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(building, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _remove_stale_temporaries(target: Path) -> None:
    """Debris of refreshes that crashed hours ago (a running one keeps touching its file)."""
    cutoff = time.time() - _STALE_TEMPORARY.total_seconds()
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
