"""Segments and tags as one service: check, preview, save, refresh, live updates, tags.

The API, the CLI and the server's background threads all go through here, so a
segment saved from the page and one loaded from a file are checked, versioned
and refreshed alike. A save is all or nothing: a definition that does not parse,
names an unknown field, event type, tag or segment, or closes a cycle is
rejected before anything is written, with the column of the mistake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from perennial.config import Settings
from perennial.errors import ConfigError, PerennialError
from perennial.lifecycle.rule_errors import ParseError
from perennial.segments.ast import (
    Expression,
    event_types,
    format_expression,
    referenced_fields,
    referenced_segments,
)
from perennial.segments.computed_tags import COMPUTED_TAGS, compute_tag_values
from perennial.segments.documents import SegmentSpec
from perennial.segments.evaluation import Evaluation, open_evaluation
from perennial.segments.kinds import Catalog
from perennial.segments.membership import (
    RefreshResult,
    refresh_many,
    refresh_membership,
    retire_membership,
)
from perennial.segments.parser import parse_expression
from perennial.segments.references import inline_segments
from perennial.segments.repository import (
    SavedSegment,
    archive_segment,
    check_name,
    get_segment,
    list_segments,
    save_segment,
)
from perennial.segments.tag_store import (
    CustomerTag,
    TagKind,
    define_tag,
    get_tag,
    list_tags,
    remove_tag,
    replace_source_rows,
    set_tags,
)
from perennial.segments.timing import is_time_relative, next_change
from perennial.store.operational import create_engine_for, migrate
from perennial.store.warehouse import Warehouse

__all__ = ["ImportResult", "Preview", "SegmentService", "TagRefresh", "UnknownSegment"]

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_EXPRESSION = 8000


class UnknownSegment(PerennialError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no segment named {name!r}")


@dataclass(frozen=True)
class Preview:
    expression: str
    """The canonical text of what was counted."""
    count: int
    customers: int
    sample: list[str]
    seconds: float


@dataclass(frozen=True)
class ImportResult:
    name: str
    tagged: int
    rejected: list[tuple[int, str, str]]
    """(line, customer id, reason) of each row not applied."""


@dataclass(frozen=True)
class TagRefresh:
    name: str
    tagged: int
    changed: int
    removed: int


class SegmentService:
    """One per process; safe to share between threads (refreshes run one at a time)."""

    def __init__(self, settings: Settings, operational: sa.Engine | None = None) -> None:
        self._settings = settings
        self._operational = operational or create_engine_for(settings)
        self._refreshing = threading.Lock()

    @classmethod
    def migrated(cls, settings: Settings) -> SegmentService:
        migrate(settings)
        return cls(settings)

    @property
    def operational(self) -> sa.Engine:
        return self._operational

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- checking and previewing -----------------------------------------------------

    def catalog(self) -> Catalog:
        """The fields, event types, tags and segments an expression may name now."""
        with self._evaluation() as evaluation:
            return evaluation.catalog

    def check(self, text: str, *, name: str | None = None) -> str:
        """The canonical text of ``text`` once checked; raises on any mistake."""
        _check_length(text)
        with self._evaluation() as evaluation:
            return format_expression(evaluation.check(text, name=name))

    def preview(self, text: str, *, sample: int = 20) -> Preview:
        """How many customers ``text`` selects now, and the first few of them."""
        _check_length(text)
        started = time.perf_counter()
        with self._evaluation() as evaluation:
            expression = evaluation.check(text)
            count, customers, ids = evaluation.count_and_sample(expression, sample)
        return Preview(
            format_expression(expression), count, customers, ids, time.perf_counter() - started
        )

    # -- saving and refreshing -------------------------------------------------------

    def save(
        self,
        name: str,
        text: str,
        *,
        title: str = "",
        description: str = "",
        live: bool = True,
        user: str = "system",
    ) -> tuple[SavedSegment, RefreshResult | None]:
        """Check, save (a new version when the definition changed) and refresh now."""
        check_name(name)
        _check_length(text)
        if len(title) > MAX_TITLE or len(description) > MAX_DESCRIPTION:
            raise ConfigError(
                f"segment {name!r}",
                "title" if len(title) > MAX_TITLE else "description",
                f"a title is at most {MAX_TITLE} characters, a description {MAX_DESCRIPTION}",
            )
        with self._refreshing, self._evaluation() as evaluation:
            expression = evaluation.check(text, name=name)
            with self._operational.begin() as connection:
                saved = save_segment(
                    connection,
                    name=name,
                    title=title or name,
                    description=description,
                    expression=text.strip(),
                    live=live,
                    user=user,
                    now=evaluation.now,
                )
            saved_expressions = {**evaluation.saved, name: expression}
            evaluation.saved = saved_expressions
            result = refresh_membership(evaluation, saved, expression, trigger="save")
        return saved, result

    def save_many(
        self, specs: Sequence[SegmentSpec], *, user: str = "system"
    ) -> list[RefreshResult]:
        """Save several segments all or nothing: every one is checked (references among
        them included, in file order) before the first is written."""
        for spec in specs:
            check_name(spec.name)
            _check_length(spec.expression)
        with self._refreshing, self._evaluation() as evaluation:
            pending = dict(evaluation.saved)
            checked: list[tuple[SegmentSpec, Expression]] = []
            for index, spec in enumerate(specs):
                evaluation.saved = pending
                try:
                    expression = evaluation.check(spec.expression, name=spec.name)
                except ParseError as error:
                    raise ConfigError(
                        f"segment {spec.name!r}", f"segments[{index}].expression", str(error)
                    ) from None
                pending = {**pending, spec.name: expression}
                checked.append((spec, expression))
            saved: list[SavedSegment] = []
            with self._operational.begin() as connection:
                for spec, _ in checked:
                    saved.append(
                        save_segment(
                            connection,
                            name=spec.name,
                            title=spec.title or spec.name,
                            description=spec.description,
                            expression=spec.expression.strip(),
                            live=spec.live,
                            user=user,
                            now=evaluation.now,
                        )
                    )
            evaluation.saved = pending
            return [
                refresh_membership(evaluation, segment, expression, trigger="save")
                for segment, (_, expression) in zip(saved, checked, strict=True)
            ]

    def get(self, name: str) -> SavedSegment:
        with self._operational.connect() as connection:
            found = get_segment(connection, name)
        if found is None or found.archived:
            raise UnknownSegment(name)
        return found

    def all_segments(self) -> list[SavedSegment]:
        with self._operational.connect() as connection:
            return list_segments(connection)

    def archive(self, name: str) -> RefreshResult:
        with self._refreshing, self._evaluation() as evaluation:
            segment = self.get(name)
            users = [
                other
                for other, tree in evaluation.saved.items()
                if other != name and _uses(tree, name)
            ]
            if users:
                raise ConfigError(
                    f"segment {name!r}",
                    "",
                    f"it is used by {', '.join(sorted(users))}; change those first",
                )
            result = retire_membership(evaluation, segment)
            with self._operational.begin() as connection:
                archive_segment(connection, name, evaluation.now)
        return result

    def refresh(
        self, names: Collection[str] | None = None, *, trigger: str = "refresh"
    ) -> list[RefreshResult]:
        """Recompute the membership of ``names`` (default: every live segment)."""
        with self._refreshing, self._evaluation() as evaluation:
            return refresh_many(evaluation, self._segments(names), trigger=trigger)

    def refresh_time_relative(self) -> tuple[list[RefreshResult], datetime | None]:
        """Re-evaluate the live segments whose truth moves with the clock alone; also say
        when the next of them may change next (``None``: not known, the schedule applies)."""
        with self._refreshing, self._evaluation() as evaluation:
            due = [
                segment
                for segment in self._segments(None)
                if is_time_relative(evaluation.saved[segment.name], evaluation.saved)
            ]
            results = [
                refresh_membership(
                    evaluation, segment, evaluation.saved[segment.name], trigger="schedule"
                )
                for segment in due
            ]
            upcoming = [next_change(evaluation.saved[segment.name], evaluation) for segment in due]
        known = [moment for moment in upcoming if moment is not None]
        return results, (min(known) if known and len(known) == len(upcoming) else None)

    def refresh_customers(
        self, customers: Sequence[str], kinds: Collection[str] | None = None
    ) -> list[RefreshResult]:
        """The live path: re-evaluate, for ``customers`` only, the live segments that events of
        ``kinds`` can change (``None``: every live segment, e.g. after a record or tag change).

        Which segments are affected is decided from their text before any query runs, so a
        batch of events no segment reads costs nothing."""
        if not customers:
            return []
        live = self._segments(None)
        saved = {segment.name: parse_expression(segment.expression) for segment in live}
        affected = [
            segment for segment in live if kinds is None or _reads_any(saved, segment.name, kinds)
        ]
        if not affected:
            return []
        unique = sorted(set(customers))
        fields: set[str] = set()
        types: set[str] = set()
        for segment in affected:
            expanded = inline_segments(saved[segment.name], saved)
            fields.update(referenced_fields(expanded))
            types.update(event_types(expanded))
        with (
            self._refreshing,
            open_evaluation(
                self._settings,
                self._operational,
                customers=unique,
                fields=fields,
                event_types=types,
            ) as evaluation,
        ):
            present = [s for s in affected if s.name in evaluation.saved]
            return refresh_many(evaluation, present, trigger="live", customers=unique)

    def _segments(self, names: Collection[str] | None) -> list[SavedSegment]:
        with self._operational.connect() as connection:
            saved = list_segments(connection)
        if names is None:
            return [segment for segment in saved if segment.live]
        by_name = {segment.name: segment for segment in saved}
        missing = sorted(set(names) - set(by_name))
        if missing:
            raise UnknownSegment(missing[0])
        return [by_name[name] for name in names]

    # -- tags -----------------------------------------------------------------------

    def define_rule_tag(
        self, name: str, text: str, *, description: str = "", user: str = "system"
    ) -> TagRefresh:
        """A tag every customer matching ``text`` carries; refreshed now and with segments."""
        check_name(name, "tag")
        _check_length(text)
        with self._refreshing, self._evaluation() as evaluation:
            expression = evaluation.check(text)
            with self._operational.begin() as connection:
                define_tag(
                    connection,
                    name=name,
                    kind=TagKind.RULE,
                    description=description,
                    expression=text.strip(),
                    now=evaluation.now,
                )
            members = evaluation.members(expression)
            return self._replace(
                name,
                TagKind.RULE,
                dict.fromkeys(members),
                f"rule: {text.strip()}",
                user,
                evaluation.now,
            )

    def refresh_tags(self, *, user: str = "system") -> list[TagRefresh]:
        """Recompute every rule tag and every built-in computed tag."""
        results = []
        with self._refreshing, self._evaluation() as evaluation:
            with self._operational.connect() as connection:
                rules = [tag for tag in list_tags(connection) if tag.kind is TagKind.RULE]
            for tag in rules:
                expression = evaluation.check(tag.expression or "")
                members = dict.fromkeys(evaluation.members(expression))
                results.append(
                    self._replace(
                        tag.name,
                        TagKind.RULE,
                        members,
                        f"rule: {tag.expression}",
                        user,
                        evaluation.now,
                    )
                )
            warehouse = Warehouse(self._settings.warehouse)
            for name, computed in COMPUTED_TAGS.items():
                with self._operational.begin() as connection:
                    define_tag(
                        connection,
                        name=name,
                        kind=TagKind.COMPUTED,
                        description=computed.description,
                        expression=None,
                        now=evaluation.now,
                    )
                values = compute_tag_values(evaluation, warehouse, name)
                results.append(
                    self._replace(
                        name,
                        TagKind.COMPUTED,
                        values,
                        f"computed: {computed.description}",
                        user,
                        evaluation.now,
                    )
                )
        return results

    def _replace(
        self,
        name: str,
        source: TagKind,
        values: dict[str, str | None],
        reason: str,
        user: str,
        now: datetime,
    ) -> TagRefresh:
        with self._operational.begin() as connection:
            changed, removed = replace_source_rows(
                connection,
                tag=name,
                source=source,
                values=values,
                reason=reason,
                set_by=user,
                now=now,
            )
        return TagRefresh(name, len(values), changed, removed)

    def tag_customers(
        self,
        rows: Sequence[tuple[str, str, str | None]],
        *,
        source: TagKind,
        reason: str,
        user: str,
    ) -> int:
        """Set (customer, tag, value) rows from an import or by hand, in one transaction."""
        now = self._settings.now()
        tagged = [
            CustomerTag(customer, tag, value, source.value, reason, now, user)
            for customer, tag, value in rows
        ]
        with self._operational.begin() as connection:
            return set_tags(connection, tagged)

    def import_tag(
        self, name: str, rows: Sequence[tuple[int, str, str | None]], *, source_name: str, user: str
    ) -> ImportResult:
        """Tag the customers of an imported list; ``rows`` are (line, customer id, value).

        Every id is checked against the known customers first: unknown or repeated
        ids are reported with their line and not tagged; the known ones are tagged
        in one transaction."""
        check_name(name, "tag")
        with self._evaluation(customers=sorted({c for _, c, _ in rows})) as evaluation:
            known = set(evaluation.members(parse_expression("customer_id is not null")))
        rejected: list[tuple[int, str, str]] = []
        accepted: dict[str, str | None] = {}
        for line, customer, value in rows:
            if customer not in known:
                rejected.append((line, customer, "unknown customer id"))
            elif customer in accepted:
                rejected.append((line, customer, "repeated customer id (the first line counts)"))
            else:
                accepted[customer] = value
        now = self._settings.now()
        with self._operational.begin() as connection:
            if get_tag(connection, name) is None:
                define_tag(
                    connection,
                    name=name,
                    kind=TagKind.IMPORT,
                    description=f"imported from {source_name}",
                    expression=None,
                    now=now,
                )
            set_tags(
                connection,
                [
                    CustomerTag(
                        c, name, v, TagKind.IMPORT.value, f"import: {source_name}", now, user
                    )
                    for c, v in accepted.items()
                ],
            )
        return ImportResult(name, len(accepted), rejected)

    def untag_customer(self, customer_id: str, tag: str) -> bool:
        with self._operational.begin() as connection:
            return remove_tag(connection, customer_id, tag)

    # -- plumbing ---------------------------------------------------------------------

    def _evaluation(
        self, customers: Sequence[str] | None = None
    ) -> AbstractContextManager[Evaluation]:
        return open_evaluation(self._settings, self._operational, customers=customers)


def _check_length(text: str) -> None:
    if len(text) > MAX_EXPRESSION:
        raise ConfigError(
            "expression", "", f"an expression is at most {MAX_EXPRESSION:,} characters"
        )


def _uses(tree: Expression, name: str) -> bool:
    return name in referenced_segments(tree)


def _reads_any(saved: Mapping[str, Expression], name: str, kinds: Collection[str]) -> bool:
    expanded = inline_segments(saved[name], saved)
    return bool(set(event_types(expanded)) & set(kinds))
