"""The per-day query of a backfill, compiled once: fresh rows, merge, RFM, tier, stage, moves.

Building and compiling an Ibis expression of this size takes about a second,
more than running it for tens of thousands of customers, and a year's backfill
would compile the same query 365 times with other literals. So the query is a
view over input tables, made once, and each day the inputs are registered again
under the same names (:meth:`DayQuery.run`); even the as-of is read from the
day's one-row table (:attr:`History.as_of_scalar`). The query is engine-neutral
Ibis like the rest; only the tables it reads are swapped.
"""

from __future__ import annotations

import contextlib
import uuid
from types import TracebackType
from typing import Self

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa

from perennial.features.history import History, load_history
from perennial.lifecycle.carried_features import (
    DAY_SCHEMA,
    FEATURES_SCHEMA,
    MEDIANS_SCHEMA,
    carried_table,
    fresh_features,
)
from perennial.lifecycle.rfm import score_rfm
from perennial.lifecycle.rfm_config import RfmConfig
from perennial.lifecycle.stage_model import StageModel, assign_stage
from perennial.lifecycle.tiers import assign_value_tiers
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = ["CHANGED_SCHEMA", "EVE_SCHEMA", "DayQuery", "score_profiles"]

EVE_SCHEMA = ibis.schema({**FEATURES_SCHEMA, "stage": dt.string})
"""The day before: its features and each customer's stage."""

CHANGED_SCHEMA = ibis.schema({"customer_id": dt.string, "new_rows": dt.boolean})
"""The day's changed customers: ``new_rows`` true for new rows, false for leaving ones."""

_INPUTS = {
    "eve": EVE_SCHEMA,
    "changed": CHANGED_SCHEMA,
    "medians": MEDIANS_SCHEMA,
    "day": DAY_SCHEMA,
}


def score_profiles(features: ir.Table, model: StageModel, rfm_config: RfmConfig | None) -> ir.Table:
    """RFM, value tier and stage over a whole day's features: what build_profiles adds."""
    return assign_stage(model, assign_value_tiers(score_rfm(features, rfm_config)))


class DayQuery:
    """Profiles of a day from the day before's and the day's fresh rows.

    The result has the columns of build_profiles plus ``previous_stage`` (null for a
    customer not known the day before) and ``stage_changed`` (null-safe). Use it as
    a context manager: closing drops its views and tables.
    """

    def __init__(
        self,
        backend: Backend,
        snapshot: Snapshot,
        model: StageModel,
        rfm_config: RfmConfig | None,
        reference: History,
    ) -> None:
        self._backend = backend
        self._prefix = f"perennial_backfill_{uuid.uuid4().hex[:8]}"
        self._registered: set[str] = set()
        inputs = {
            role: self.table(role, schema.to_pyarrow().empty_table())
            for role, schema in _INPUTS.items()
        }
        eve, day = inputs["eve"], inputs["day"]
        history = load_history(
            backend,
            snapshot,
            reference.as_of,
            timezone=reference.timezone,
            as_of_scalar=day.select(day_as_of=day.as_of).day_as_of.as_scalar(),
        )
        fresh = fresh_features(history, inputs["changed"])
        features = carried_table(eve.drop("stage"), fresh, inputs["medians"], day, reference)
        scored = score_profiles(features, model, rfm_config)
        before = eve.select(eve_customer_id=eve.customer_id, previous_stage=eve.stage)
        joined = scored.left_join(before, scored.customer_id == before.eve_customer_id)
        expression = joined.select(
            *[joined[c] for c in scored.columns],
            previous_stage=joined.previous_stage,
            stage_changed=~joined.stage.identical_to(joined.previous_stage),
        )
        self.columns: tuple[str, ...] = tuple(scored.columns)
        """The profile columns of the result (without the two about the move)."""
        self._schema = expression.schema().to_pyarrow()
        self._view = f"{self._prefix}_result"
        # Ibis reads the view's schema with DuckDB 2's deprecated ``fetch_arrow_table``;
        # ``perennial.store.backends`` silences that warning process-wide.
        self._result = backend.connection.create_view(self._view, expression, overwrite=True)

    def run(self, eve: pa.Table, changed: pa.Table, medians: pa.Table, day: pa.Table) -> pa.Table:
        """The day's profiles; the inputs as :data:`CHANGED_SCHEMA` and the schemas of
        :mod:`carried_features` say (``day``'s as-of is the one the features use)."""
        inputs = {"eve": eve, "changed": changed, "medians": medians, "day": day}
        for role, data in inputs.items():
            target = _INPUTS[role].to_pyarrow()
            self.table(role, data.select(target.names).cast(target))
        # The view's own column types are the engine's (int32 where Ibis says int16).
        return self._backend.to_pyarrow(self._result).cast(self._schema)

    def table(self, role: str, data: pa.Table) -> ir.Table:
        """``data`` as the engine table named for ``role``, replacing the one before."""
        name = f"{self._prefix}_{role}"
        self._registered.add(name)
        return self._backend.register_arrow(name, data)

    def close(self) -> None:
        """Drop the result view and the tables behind it.

        A caller that closed the backend first (an abandoned generator collected
        later) has nothing left to drop: the connection took them with it.
        """
        with contextlib.suppress(Exception):
            # Ibis 12's drop_view renders no name with this sqlglot, hence the SQL.
            self._backend.connection.raw_sql(f"DROP VIEW IF EXISTS {self._view}")
            for name in self._registered:
                self._backend.unregister_arrow(name)
        self._registered.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
