"""Saving, versioning and refreshing segments; bad definitions rejected whole; tags.

Every bad definition is refused with the column (or key path) of the mistake and
leaves the operational store exactly as it was: no segment, no version, no member,
no log line.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from perennial.errors import ConfigError
from perennial.lifecycle.rule_errors import ParseError
from perennial.segments.documents import SegmentSpec, load_segment_document
from perennial.segments.references import SegmentCycleError
from perennial.segments.repository import changes_after, current_members, segment_versions
from perennial.segments.service import SegmentService
from perennial.segments.tables import (
    CUSTOMER_TAGS,
    SEGMENT_CHANGES,
    SEGMENT_MEMBERS,
    SEGMENT_VERSIONS,
    SEGMENTS,
)
from perennial.segments.tag_store import TagKind, tags_of
from perennial.store.warehouse import Warehouse
from tests.segments.conftest import CLOCK, SegmentStore

TABLES = (SEGMENTS, SEGMENT_VERSIONS, SEGMENT_MEMBERS, SEGMENT_CHANGES, CUSTOMER_TAGS)


def _state(service: SegmentService) -> list[list[tuple[object, ...]]]:
    with service.operational.connect() as connection:
        return [[tuple(row) for row in connection.execute(sa.select(t))] for t in TABLES]


BAD = [
    ("recency_dayz > 30", 1, "unknown field 'recency_dayz' (did you mean 'recency_days'?)"),
    ("monetary_total > 'abc'", 18, "compares values of one kind"),
    ("(stage == 'dormant'", 20, "expected ')'"),
    ("stage == 'dormant')", 19, "this ')' closes nothing"),
    ("did lesson_complete", 5, "unknown event type 'lesson_complete'"),
    ("did never_seen_event", 5, "no event of this type has been seen"),
    ("did login in last 99999 days", 19, "longer than 3660 days"),
    ("did login in last 0 days", 19, "longer than zero"),
    ("stage; DROP TABLE segments", 6, "unexpected character ';'"),
    ("stage == 'x' or 1 = 1", 19, "write '==' to compare"),
    ("has_tag('nobody-has-this')", 1, "unknown tag 'nobody-has-this'"),
    ("in_segment('missing')", 1, "unknown segment 'missing'"),
    ("frequency_orders", 1, "must be a condition"),
    ("days_since(stage) > 3", 12, "needs an instant or a date"),
    ("did login at least 0 times", 20, "always true"),
    ('stage == "dormant"', 10, "single quotes"),
]


@pytest.mark.parametrize(("text", "column", "message"), BAD)
def test_a_bad_definition_is_refused_at_its_column_and_saves_nothing(
    service: SegmentService, text: str, column: int, message: str
) -> None:
    service.save("kept", "stage == 'dormant'")
    before = _state(service)
    with pytest.raises(ParseError) as raised:
        service.save("bad", text)
    assert raised.value.column == column, str(raised.value)
    assert message in str(raised.value)
    with pytest.raises(ParseError):
        service.preview(text)
    assert _state(service) == before


def test_injection_in_a_string_literal_is_only_a_value(service: SegmentService) -> None:
    text = "stage == 'x''; DROP TABLE segments; --' or name == 'Robert''); --'"
    saved, result = service.save("literal", text)
    assert result is not None and result.members == 0
    assert [s.name for s in service.all_segments()] == ["literal"]
    assert saved.expression == text


def test_a_cycle_between_segments_is_refused_with_its_path(service: SegmentService) -> None:
    service.save("first", "stage == 'dormant'")
    service.save("second", "in_segment('first') and frequency_orders > 1")
    before = _state(service)
    with pytest.raises(SegmentCycleError, match="first -> second -> first"):
        service.save("first", "in_segment('second')")
    with pytest.raises(ParseError, match="cannot reference itself"):
        service.save("first", "in_segment('first')")
    assert _state(service) == before


def test_a_file_with_one_bad_segment_saves_none_of_them(
    service: SegmentService, tmp_path: Path
) -> None:
    document = tmp_path / "segments.yaml"
    document.write_text(
        "segments:\n"
        "  - {name: good, expression: \"stage == 'dormant'\"}\n"
        "  - {name: uses_good, expression: \"in_segment('good') and recency_days > 10\"}\n"
        '  - {name: broken, expression: "recency_days >"}\n',
        encoding="utf-8",
    )
    before = _state(service)
    with pytest.raises(ConfigError) as raised:
        service.save_many(load_segment_document(document).segments)
    assert raised.value.key_path == "segments[2].expression"
    assert "expected an operand at column 15" in str(raised.value)
    assert _state(service) == before


@pytest.mark.parametrize(
    ("yaml_text", "path"),
    [
        ("segments: []\n", "segments"),
        ("segments:\n  - {name: a}\n", "segments[0].expression"),
        ("segments:\n  - {name: a, expression: x, colour: red}\n", "segments[0].colour"),
        (
            "segments:\n  - {name: a, expression: 'x > 1'}\n  - {name: a, expression: 'x > 2'}\n",
            "segments",
        ),
        ("segments: [\n", ""),
    ],
)
def test_a_malformed_document_names_the_key(tmp_path: Path, yaml_text: str, path: str) -> None:
    document = tmp_path / "bad.yaml"
    document.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_segment_document(document)
    assert raised.value.key_path == path


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 101, "../etc", "名字"])
def test_a_bad_name_is_refused(service: SegmentService, name: str) -> None:
    with pytest.raises(ConfigError, match="name"):
        service.save(name, "stage == 'dormant'")
    assert service.all_segments() == []


def test_versions_and_the_enter_exit_log(service: SegmentService) -> None:
    saved, first = service.save("heavy", "frequency_orders >= 5", title="Heavy buyers")
    assert saved.version == 1 and first is not None and first.entered == first.members > 0
    again, repeat = service.save("heavy", "frequency_orders >= 5", title="Heavy buyers")
    assert again.version == 1 and repeat is not None and (repeat.entered, repeat.exited) == (0, 0)

    narrowed, change = service.save("heavy", "frequency_orders >= 8", title="Heavy buyers")
    assert narrowed.version == 2 and change is not None
    assert change.exited > 0 and change.entered == 0
    with service.operational.connect() as connection:
        log = changes_after(connection, 0, limit=100_000, name="heavy")
        members = set(current_members(connection, "heavy"))
        versions = [row.version for row in segment_versions(connection, "heavy")]
    entered = {c.customer_id for c in log if c.change == "enter"}
    exited = {c.customer_id for c in log if c.change == "exit"}
    assert members == entered - exited and len(exited) == change.exited
    assert {c.version for c in log if c.change == "exit"} == {2}
    assert versions == [2, 1]
    assert all(c.at == CLOCK for c in log)


def test_archiving_empties_the_segment_unless_another_uses_it(service: SegmentService) -> None:
    service.save("base", "frequency_orders >= 3")
    service.save("derived", "in_segment('base') and recency_days < 60")
    with pytest.raises(ConfigError, match="used by derived"):
        service.archive("base")
    result = service.archive("derived")
    assert result.exited > 0
    assert [s.name for s in service.all_segments()] == ["base"]


def test_time_relative_segments_move_with_the_clock(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    now = SegmentService.migrated(segment_store.settings(home))
    now.save("recent_login", "did login in last 14 days")
    now.save("buyers", "frequency_orders >= 1")
    later = SegmentService(segment_store.settings(home, clock=CLOCK + timedelta(days=20)))
    refreshed, _ = later.refresh_time_relative()
    results = {r.name: r for r in refreshed}
    assert set(results) == {"recent_login"}, "only the segment that reads the clock"
    assert results["recent_login"].exited > 0 and results["recent_login"].members == 0


def test_the_next_change_is_the_first_login_leaving_the_window(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    """The scheduler wakes when the oldest login in the window turns 14 days old."""
    service = SegmentService.migrated(segment_store.settings(tmp_path / "home"))
    service.save("recent_login", "did login in last 14 days")
    _, upcoming = service.refresh_time_relative()
    logins = [
        e["ts"]
        for e in pq.read_table(
            Warehouse(segment_store.warehouse).snapshot().paths("events")
        ).to_pylist()
        if e["event_type"] == "login" and e["customer_id"] and e["ts"] > CLOCK - timedelta(days=14)
    ]
    assert upcoming == min(logins) + timedelta(days=14)
    service.save("lapsed", "days_since(last_order_at) > 45 or first_order_at < days_ago(400)")
    service.archive("recent_login")
    _, upcoming = service.refresh_time_relative()
    profiles = pq.read_table(
        Warehouse(segment_store.warehouse).snapshot().paths("profiles")
    ).to_pylist()
    deadlines = [
        moment
        for p in profiles
        for moment in (
            p["last_order_at"] and p["last_order_at"] + timedelta(days=45),
            p["first_order_at"] and p["first_order_at"] + timedelta(days=400),
        )
        if moment and moment > CLOCK
    ]
    assert upcoming == min(deadlines)
    service.save("mixed", "days_since(last_order_at) * 2 > 90")
    assert service.refresh_time_relative()[1] is None, "an unknown use of the clock: schedule only"


def test_rule_computed_imported_and_manual_tags_say_why(service: SegmentService) -> None:
    rule = service.define_rule_tag("loyal", "frequency_orders >= 5", description="Five orders")
    assert rule.tagged > 0
    computed = {r.name: r for r in service.refresh_tags()}
    assert {"favourite_category", "price_sensitivity", "preferred_channel", "loyal"} <= set(
        computed
    )
    imported = service.import_tag(
        "webinar",
        [
            (2, "C0000001", "2025-11"),
            (3, "C0000002", None),
            (4, "NOPE", None),
            (5, "C0000001", None),
        ],
        source_name="webinar.csv",
        user="tests",
    )
    assert imported.tagged == 2
    assert imported.rejected == [
        (4, "NOPE", "unknown customer id"),
        (5, "C0000001", "repeated customer id (the first line counts)"),
    ]
    service.tag_customers(
        [("C0000003", "vip", "gold")],
        source=TagKind.MANUAL,
        reason="manual: called us",
        user="agent.li",
    )
    with service.operational.connect() as connection:
        tags = {t.tag: t for t in tags_of(connection, "C0000001")}
        vip = tags_of(connection, "C0000003")
    assert tags["webinar"].value == "2025-11" and tags["webinar"].reason == "import: webinar.csv"
    assert tags["favourite_category"].source == "computed"
    assert [(t.tag, t.value, t.source, t.set_by) for t in vip if t.tag == "vip"] == [
        ("vip", "gold", "manual", "agent.li")
    ]
    assert service.preview("tag('webinar') == '2025-11'").sample == ["C0000001"]
    assert service.preview("has_tag('vip')").count == 1


def test_a_refresh_keeps_manual_tags_of_the_same_name(service: SegmentService) -> None:
    service.tag_customers(
        [("C0000003", "loyal", None)], source=TagKind.MANUAL, reason="manual", user="t"
    )
    service.define_rule_tag("loyal", "frequency_orders >= 1000")
    with service.operational.connect() as connection:
        assert [t.source for t in tags_of(connection, "C0000003") if t.tag == "loyal"] == ["manual"]


def test_a_tag_change_moves_a_customer_into_segments_at_once(service: SegmentService) -> None:
    service.tag_customers([("C0000004", "vip", None)], source=TagKind.MANUAL, reason="m", user="t")
    service.save("vips", "has_tag('vip')")
    service.tag_customers([("C0000005", "vip", None)], source=TagKind.MANUAL, reason="m", user="t")
    [result] = service.refresh_customers(["C0000005"], None)
    assert (result.entered, result.members) == (1, 2)
    with service.operational.connect() as connection:
        assert set(current_members(connection, "vips")) == {"C0000004", "C0000005"}


def test_segment_specs_are_checked_like_api_input() -> None:
    with pytest.raises(ValueError):
        SegmentSpec(name="a", expression="")


def test_a_live_refresh_reads_every_event_type_its_segments_use_not_only_the_touched_one(
    service: SegmentService,
) -> None:
    """A batch of logins re-evaluates a segment that also counts page views: the live path
    reads only the event types its segments use, and must not drop the page views."""
    _, saved = service.save(
        "browsing_logins",
        "did login in last 90 days and did page_view at least 2 times in last 90 days",
    )
    service.save("searchers", "did search in last 90 days")
    with service.operational.connect() as connection:
        before = set(current_members(connection, "browsing_logins"))
    customers = [*sorted(before), "C0000001", "C0000002", "C0000003"]

    results = service.refresh_customers(customers, {"login"})

    assert saved.members > 0
    assert [(r.name, r.entered, r.exited) for r in results] == [("browsing_logins", 0, 0)]
    with service.operational.connect() as connection:
        assert set(current_members(connection, "browsing_logins")) == before
