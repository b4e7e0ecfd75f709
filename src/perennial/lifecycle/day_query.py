"""The per-day query of a backfill, compiled once: merge, RFM, value tier, stage, moves.

Compiling an Ibis expression of this size takes a few tenths of a second, as
long as running it for tens of thousands of customers, and a year's backfill
would compile the same query 365 times with other literals. So the day's inputs
go in as tables, views replaced each day (:meth:`DayQuery.run`), and the SQL
text is made once. The query is engine-neutral Ibis like the rest; only the
views it reads are swapped.
"""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa

from perennial.features.history import History
from perennial.lifecycle.carried_features import (
    DAY_SCHEMA,
    FEATURES_SCHEMA,
    FRESH_SCHEMA,
    MEDIANS_SCHEMA,
    carried_table,
)
from perennial.lifecycle.rfm import score_rfm
from perennial.lifecycle.rfm_config import RfmConfig
from perennial.lifecycle.stage_model import StageModel, assign_stage
from perennial.lifecycle.tiers import assign_value_tiers
from perennial.store.backends import Backend

__all__ = ["EVE_SCHEMA", "DayQuery", "score_profiles"]

EVE_SCHEMA = ibis.schema({**FEATURES_SCHEMA, "stage": dt.string})
"""The day before: its features and each customer's stage."""

_INPUTS = {"eve": EVE_SCHEMA, "fresh": FRESH_SCHEMA, "medians": MEDIANS_SCHEMA, "day": DAY_SCHEMA}


def score_profiles(features: ir.Table, model: StageModel, rfm_config: RfmConfig | None) -> ir.Table:
    """RFM, value tier and stage over a whole day's features: what build_profiles adds."""
    return assign_stage(model, assign_value_tiers(score_rfm(features, rfm_config)))


class DayQuery:
    """Profiles of a day from the day before's and the day's fresh rows.

    The result has the columns of build_profiles plus ``previous_stage`` (null for a
    customer not known the day before) and ``stage_changed`` (null-safe). Use it as
    a context manager: closing drops its views.
    """

    def __init__(
        self,
        backend: Backend,
        model: StageModel,
        rfm_config: RfmConfig | None,
        reference: History,
    ) -> None:
        self._backend = backend
        prefix = f"perennial_backfill_{uuid.uuid4().hex[:8]}"
        self._views = {role: f"{prefix}_{role}" for role in _INPUTS}
        inputs = {role: ibis.table(_INPUTS[role], name=self._views[role]) for role in _INPUTS}
        eve = inputs["eve"]
        features = carried_table(
            eve.drop("stage"), inputs["fresh"], inputs["medians"], inputs["day"], reference
        )
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
        self._created: list[str] = []
        self._inputs: list[ir.Table] = []
        empty = {role: schema.to_pyarrow().empty_table() for role, schema in _INPUTS.items()}
        self._replace_inputs(empty)
        result = f"{prefix}_result"
        with _ibis_on_duckdb_2():
            self._result = backend.connection.create_view(result, expression, overwrite=True)
        self._created.append(result)

    def run(self, eve: pa.Table, fresh: pa.Table, medians: pa.Table, day: pa.Table) -> pa.Table:
        """The day's profiles; the inputs as the schemas of :mod:`carried_features` say."""
        self._replace_inputs({"eve": eve, "fresh": fresh, "medians": medians, "day": day})
        # The view's own column types are the engine's (int32 where Ibis says int16).
        return self._backend.to_pyarrow(self._result).cast(self._schema)

    def close(self) -> None:
        """Drop the views, the result first (Ibis 12's ``drop_view`` renders no name here).

        A caller that closed the backend first (an abandoned generator collected
        later) has nothing left to drop: the connection took the views with it.
        """
        with contextlib.suppress(Exception):
            for view in reversed(self._created):
                self._backend.connection.raw_sql(f"DROP VIEW IF EXISTS {view}")
        self._created.clear()
        self._inputs.clear()

    def _replace_inputs(self, tables: dict[str, pa.Table]) -> None:
        """Point each input view at new data; the result view reads them when it runs."""
        inputs = []  # a memtable's data lives as long as its expression
        for role, data in tables.items():
            target = _INPUTS[role].to_pyarrow()
            table = ibis.memtable(data.select(target.names).cast(target))
            with _ibis_on_duckdb_2():
                self._backend.connection.create_view(self._views[role], table, overwrite=True)
            if self._views[role] not in self._created:
                self._created.append(self._views[role])
            inputs.append(table)
        self._inputs = inputs

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def _ibis_on_duckdb_2() -> Iterator[None]:
    """Ibis 12 reads a view's schema with DuckDB 2's deprecated ``fetch_arrow_table``; that
    is Ibis's business (``perennial.store.backends`` silences it for queries the same way)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        yield
