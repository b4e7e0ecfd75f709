"""One evaluation session: the warehouse as of now, the saved segments and tags it can use.

Opening a session reads the newest warehouse snapshot and builds the frame once;
every expression checked, previewed or refreshed in it sees the same data. A
session can be restricted to some customers (the live path after new events):
the frame and the events are then semi-joined to their ids before any
aggregate runs, so the engine reads only their rows' worth of work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from perennial.config import Settings
from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_errors import ParseError
from perennial.segments.ast import (
    Expression,
    referenced_fields,
    referenced_segments,
    referenced_tags,
)
from perennial.segments.catalog import build_catalog, stored_event_types
from perennial.segments.compiler import (
    EvaluationContext,
    compile_membership,
    compile_memberships,
)
from perennial.segments.frame import SegmentFrame, build_frame
from perennial.segments.kinds import Catalog, check_expression
from perennial.segments.parser import parse_expression
from perennial.segments.references import SegmentCycleError, find_cycle, inline_segments
from perennial.segments.repository import list_segments
from perennial.segments.tag_store import known_tag_names, tags_table
from perennial.store.backends import Backend, Engine, open_backend
from perennial.store.warehouse import Warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["Evaluation", "open_evaluation"]

_SUBJECTS = "perennial_segment_subjects"
_customer_counts: dict[tuple[object, int], int] = {}
_TAGS = "perennial_segment_tags"
_SUBJECT_ROWS = "perennial_segment_subject_rows"
_SUBJECT_EVENTS = "perennial_segment_subject_events"


@dataclass
class Evaluation:
    """An open session; use :func:`open_evaluation`."""

    backend: Backend
    operational: sa.Engine
    now: datetime
    timezone: str
    frame: ir.Table
    events: ir.Table
    saved: Mapping[str, Expression]
    catalog_source: Callable[[], Catalog]
    """Builds :attr:`catalog` on first use: naming the stored event types scans every
    event of a new warehouse version, which the live path (saved, already checked
    segments, a new version per drained batch) never needs."""
    warehouse_version: int
    warehouse_key: object = None
    built: SegmentFrame | None = None
    """The unrestricted frame's parts (``None`` when restricted to some customers)."""

    @cached_property
    def catalog(self) -> Catalog:
        """The fields, event types, tags and segments an expression may name."""
        return self.catalog_source()

    def check(self, text: str, *, name: str | None = None) -> Expression:
        """Parse and check ``text``; raises :class:`ParseError` (with the column) or
        :class:`~perennial.segments.references.SegmentCycleError`."""
        expression = parse_expression(text)
        catalog = dataclasses.replace(self.catalog, segments=frozenset(self.saved))
        check_expression(expression, catalog, text)
        if name is not None:
            if name in referenced_segments(expression):
                reason = f"segment '{name}' cannot reference itself"
                raise ParseError(reason, text, text.find(name))
            cycle = find_cycle(name, expression, self.saved)
            if cycle:
                raise SegmentCycleError(cycle)
        return expression

    def membership(self, expression: Expression) -> ir.Table:
        """``customer_id, member`` for every customer of the session."""
        return compile_membership(expression, self._context(expression))

    def count_and_sample(self, expression: Expression, limit: int) -> tuple[int, int, list[str]]:
        """(members, customers, the first ``limit`` member ids): the members from one
        query, the customers counted once per warehouse version."""
        ids = self.members(expression)
        return len(ids), self.customers(), ids[:limit]

    def members_of(self, expressions: Mapping[str, Expression]) -> dict[str, set[str]]:
        """The members of several segments from one query."""
        if not expressions:
            return {}
        merged = rule.And(tuple(expressions.values()))  # type: ignore[arg-type]
        context = self._context(merged)
        table, columns = compile_memberships(expressions, context)
        result = self.backend.to_pyarrow(table)
        ids = result.column("customer_id")
        found: dict[str, set[str]] = {}
        for name, column in columns.items():
            chosen = ids.filter(pc.fill_null(result.column(column), False))
            found[name] = {value for value in chosen.to_pylist() if value is not None}
        return found

    def members(self, expression: Expression) -> list[str]:
        """The ids of the members, sorted."""
        table = self.membership(expression)
        result = self.backend.to_pyarrow(
            table.filter(table.member).select("customer_id").order_by("customer_id")
        )
        return [value for value in result.column("customer_id").to_pylist() if value is not None]

    def customers(self) -> int:
        """Customers in the session (counted once per warehouse version when unrestricted)."""
        if self.built is None:
            return self._count_rows(self.frame)
        key = (self.warehouse_key, self.warehouse_version)
        cached = _customer_counts.get(key)
        if cached is None:
            cached = self._count_rows(self.built.ids)
            _customer_counts.clear()
            _customer_counts[key] = cached
        return cached

    def _count_rows(self, table: ir.Table) -> int:
        # Through Arrow: Ibis's scalar path goes through pandas, which only adds a warning.
        counted = self.backend.to_pyarrow(table.aggregate(rows=table.count()))
        return int(counted.column("rows")[0].as_py())

    def _context(self, expression: Expression) -> EvaluationContext:
        expanded = inline_segments(expression, self.saved)
        frame = self.frame
        if self.built is not None:
            frame = self.built.narrowed(referenced_fields(expanded))
        tags = None
        names = referenced_tags(expanded)
        if names:
            with self.operational.connect() as connection:
                tags = self.backend.register_arrow(_TAGS, tags_table(connection, names))
        return EvaluationContext(
            self.backend,
            frame,
            self.events,
            self.now,
            self.timezone,
            tags=tags,
            segments=self.saved,
        )


def _subjects_only(
    backend: Backend, frame: ir.Table, events: ir.Table, customers: Sequence[str]
) -> tuple[ir.Table, ir.Table]:  # frame: already narrowed to the fields the caller needs
    """The rows and events of ``customers`` only, read once into memory.

    Every segment the session evaluates then runs on these small tables: one scan of
    the stored events per live batch, however many segments it re-evaluates.
    """
    subjects = backend.register_arrow(
        _SUBJECTS, pa.table({"customer_id": pa.array(list(customers), pa.string())})
    )
    their_rows = backend.to_pyarrow(
        frame.semi_join(subjects, frame.customer_id == subjects.customer_id)
    )
    their_events = backend.to_pyarrow(
        events.semi_join(subjects, events.customer_id == subjects.customer_id)
    )
    return (
        backend.register_arrow(_SUBJECT_ROWS, their_rows),
        backend.register_arrow(_SUBJECT_EVENTS, their_events),
    )


def _of_types(events: ir.Table, event_types: Collection[str]) -> ir.Table:
    """The events of ``event_types`` only: a filter the engine pushes into the scan, so
    the live path reads the customer ids of those types' rows, not of every event."""
    if not event_types:
        return events.filter(ibis.literal(False))
    return events.filter(events.event_type.isin(sorted(event_types)))


@contextmanager
def open_evaluation(
    settings: Settings,
    operational: sa.Engine,
    *,
    customers: Sequence[str] | None = None,
    now: datetime | None = None,
    engine: Engine = "duckdb",
    spark_session: SparkSession | None = None,
    fields: Collection[str] | None = None,
    event_types: Collection[str] | None = None,
) -> Iterator[Evaluation]:
    """A session over the newest warehouse snapshot (restricted to ``customers`` if given),
    on DuckDB or on Spark (``engine="spark"``: the same queries, see ``docs/scale-out.md``).

    With ``customers``, ``fields`` and ``event_types``, only those fields and events of
    theirs are read (the live path knows what its segments use)."""
    instant = now or settings.now()
    warehouse = Warehouse(settings.warehouse)
    snapshot = warehouse.snapshot()
    with open_backend(settings, engine, spark_session) as backend:
        built = build_frame(backend, snapshot, instant, settings.warehouse.resolve())
        frame, events = built.frame, built.events
        if customers is not None:
            if fields is not None:
                frame = built.narrowed(fields)
            if event_types is not None:
                events = _of_types(events, event_types)
            frame, events = _subjects_only(backend, frame, events, customers)
        with operational.connect() as connection:
            saved_segments = list_segments(connection)
            tags = known_tag_names(connection)
        saved = {segment.name: parse_expression(segment.expression) for segment in saved_segments}

        def catalog() -> Catalog:
            stored = stored_event_types(backend, built.events, settings.warehouse, snapshot.version)
            return build_catalog(built.frame, stored, tags, saved)

        yield Evaluation(
            backend,
            operational,
            instant,
            settings.default_timezone,
            frame,
            events,
            saved,
            catalog,
            snapshot.version,
            settings.warehouse.resolve(),
            None if customers is not None else built,
        )
