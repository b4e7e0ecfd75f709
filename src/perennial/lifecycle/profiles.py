"""Profiles: one row per customer with features, RFM, value tier and lifecycle stage.

The profile is where every computed answer becomes a plain column (DESIGN rule 2):
later steps add predictions, tags and segments beside these. ``build_profiles``
is one Ibis expression, so the same code runs on DuckDB and on Spark;
``store_profiles`` replaces the warehouse's ``profiles`` table in one commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.features.history import load_history
from perennial.features.orders import rfm_inputs
from perennial.features.snapshot import compute_features
from perennial.lifecycle.rfm import score_rfm
from perennial.lifecycle.rfm_config import RfmConfig
from perennial.lifecycle.stage_model import StageModel, assign_stage
from perennial.lifecycle.tiers import assign_value_tiers
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot, Warehouse

__all__ = [
    "PROFILES_TABLE",
    "StageCount",
    "as_of_instant",
    "build_profiles",
    "build_rfm",
    "distribution_of",
    "stage_counts",
    "stage_distribution",
    "store_profile_rows",
    "store_profiles",
    "stored_stage_counts",
]

PROFILES_TABLE = "profiles"


def as_of_instant(value: str | None, timezone: str) -> datetime:
    """The instant ``--as-of`` means: a date is the end of that local day (data of the day
    counts), a timestamp without offset is local time in ``timezone``; none means now."""
    zone = ZoneInfo(timezone)
    if value is None:
        return datetime.now(zone)
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    instant = datetime.fromisoformat(value)
    return instant if instant.tzinfo else instant.replace(tzinfo=zone)


def build_rfm(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    rfm_config: RfmConfig | None = None,
    timezone: str = "Asia/Shanghai",
) -> ir.Table:
    """RFM alone: the scores, code and segment of every customer with a paid order.

    The same scores as ``build_profiles`` gives those customers (quantiles are
    ranked over customers who ordered in both), from one pass over the paid
    orders instead of every feature.
    """
    history = load_history(backend, snapshot, as_of, timezone=timezone)
    return score_rfm(rfm_inputs(history), rfm_config)


def build_profiles(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    stage_model: StageModel,
    *,
    rfm_config: RfmConfig | None = None,
    timezone: str = "Asia/Shanghai",
    features: ir.Table | None = None,
) -> ir.Table:
    """Features as of ``as_of``, then RFM scores and segment, value tier and stage.

    ``features`` are the ones already computed for that as-of (by
    :func:`perennial.features.buckets.feature_table`, in bounded memory); by default
    they are part of the same lazy expression.
    """
    if features is None:
        features = compute_features(backend, snapshot, as_of, timezone=timezone)
    scored = assign_value_tiers(score_rfm(features, rfm_config))
    return assign_stage(stage_model, scored)


@dataclass(frozen=True)
class StageCount:
    key: str | None
    label_en: str
    label_zh: str
    customers: int
    share: float


def stage_distribution(profiles: pa.Table, stage_model: StageModel) -> list[StageCount]:
    """Customers per stage in the model's order (stages with none included), then unmatched."""
    return distribution_of(Counter(profiles.column("stage").to_pylist()), stage_model)


def stored_stage_counts(
    backend: Backend, snapshot: Snapshot, stage_model: StageModel
) -> list[StageCount]:
    """:func:`stage_distribution` of the stored profile table, counted by the engine."""
    paths = snapshot.paths(PROFILES_TABLE)
    if not paths:
        return distribution_of({}, stage_model)
    profiles = backend.table(PROFILES_TABLE, snapshot, schema=pq.read_schema(paths[0]))
    return stage_counts(backend, profiles, stage_model)


def stage_counts(backend: Backend, profiles: ir.Table, stage_model: StageModel) -> list[StageCount]:
    """:func:`stage_distribution` of a profile table the engine holds, counted by the engine."""
    counted = backend.to_pyarrow(profiles.group_by("stage").aggregate(customers=profiles.count()))
    counts = dict(
        zip(
            counted.column("stage").to_pylist(),
            counted.column("customers").to_pylist(),
            strict=True,
        )
    )
    return distribution_of(counts, stage_model)


def distribution_of(counts: Mapping[str | None, int], stage_model: StageModel) -> list[StageCount]:
    """The stage counts as :class:`StageCount` rows, in the model's order, then unmatched."""
    total = sum(counts.values()) or 1
    result = [
        StageCount(
            stage.key,
            stage.label_en,
            stage.label_zh,
            counts.get(stage.key, 0),
            counts.get(stage.key, 0) / total,
        )
        for stage in stage_model.stages
    ]
    if counts.get(None):
        result.append(
            StageCount(None, "(no stage matched)", "(未匹配)", counts[None], counts[None] / total)
        )
    return result


def store_profiles(warehouse: Warehouse, profiles: pa.Table, batch_id: str) -> int:
    """Replace the warehouse's profile table with ``profiles`` in one atomic commit."""
    with warehouse.transaction(batch_id) as txn:
        txn.remove_all(PROFILES_TABLE)
        txn.append_arrow(PROFILES_TABLE, profiles)
    return int(profiles.num_rows)


def store_profile_rows(
    warehouse: Warehouse, backend: Backend, profiles: ir.Table, batch_id: str
) -> int:
    """Replace the profile table with the rows of ``profiles`` in one atomic commit.

    DuckDB writes the rows to Parquet itself, so the table never sits in Python's
    memory (17 M profiles are about 9 GB as Arrow, beside an engine using its own
    limit). Spark's rows come through Arrow: its Parquet writer's timestamp encoding
    depends on the session's settings, and the warehouse's files must read the same
    on every engine.
    """
    with warehouse.transaction(batch_id) as txn:
        txn.remove_all(PROFILES_TABLE)
        if backend.engine != "duckdb":
            return txn.append_arrow(PROFILES_TABLE, backend.to_pyarrow(profiles))
        staged = txn.scratch_dir(PROFILES_TABLE) / "rows"
        backend.write_parquet(profiles, staged)
        return txn.adopt_staged(PROFILES_TABLE, staged)
