"""Evidence extraction: the links an identify event's JSON names, numbered in the order
they apply, exactly as the documented rules (tests/ingest/identity_reference.py) say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.ingest.identity_evidence import LINKS, extract_evidence, link_reason
from tests.ingest.identity_reference import _evidence

BATCH = "20250301T000000-00000001"
CLOCK = datetime(2026, 1, 1, tzinfo=UTC)

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from(["13800000001", "+86 138-0000-0002", " li@Example.com ", "a@b", "o-1 ", ""]),
    st.text(max_size=6),
)
_VALUES = st.one_of(_JSON_SCALARS, st.lists(_JSON_SCALARS, max_size=2))
_PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "email": _VALUES,
        "phone": _VALUES,
        "wechat_openid": _VALUES,
        "wechat_unionid": _VALUES,
        "external_ids": _VALUES | st.dictionaries(st.text(max_size=3), _JSON_SCALARS, max_size=3),
    },
)
_EVENT = st.fixed_dictionaries(
    {
        "anonymous_id": st.sampled_from([None, "dev-1", "dev-2"]),
        "customer_id": st.sampled_from([None, "C1"]),
        "event_type": st.sampled_from(["identify", "login"]),
        "ts": st.sampled_from(
            [datetime(1969, 12, 31, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)]
        ),
        "properties": st.none() | _PROPERTIES,
    }
).filter(lambda event: event["anonymous_id"] or event["customer_id"])


def _extract(tmp_path: Path, events: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    """The links ``extract_evidence`` finds in ``events`` (lines 1, 2, ...), in order."""
    source = tmp_path / "events.parquet"
    columns = ["anonymous_id", "customer_id", "event_type", "ts"]
    table = {name: [event[name] for event in events] for name in columns}
    table["properties"] = [
        orjson.dumps(e["properties"]).decode() if e["properties"] is not None else None
        for e in events
    ]
    table["_batch_id"] = [BATCH] * len(events)
    table["_source_file"] = ["events.jsonl"] * len(events)
    table["_source_line"] = list(range(1, len(events) + 1))
    pq.write_table(pa.table(table), source)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet(str(source)).to_view("batch_rows")
    extract_evidence(con, "events", [str(source)], BATCH, CLOCK, "CN")
    found = con.execute(
        f"""
        SELECT linked_at, source_line, a_type || ':' || a_value, b_type || ':' || b_value,
               {link_reason("events", "l")}
        FROM {LINKS} l ORDER BY ord
        """
    ).fetchall()
    con.close()
    return found


@settings(max_examples=150, deadline=None)
@given(st.lists(_EVENT, min_size=1, max_size=6))
def test_links_are_the_documented_ones_in_the_order_they_apply(
    tmp_path_factory: Any, events: list[dict[str, Any]]
) -> None:
    _, expected = _evidence("events", events, CLOCK)
    ordered = sorted(expected, key=lambda link: (link.at, link.line, link.place))
    assert _extract(tmp_path_factory.mktemp("events"), events) == [
        (link.at, link.line, link.a, link.b, link.reason) for link in ordered
    ]


def test_an_identify_event_links_its_device_to_each_trait_after_its_customer(
    tmp_path: Path,
) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    event = {
        "anonymous_id": "dev-1",
        "customer_id": "C1",
        "event_type": "identify",
        "ts": at,
        "properties": {
            "phone": "138 0000 0001",
            "email": " Li@Example.com",
            "external_ids": {"erp": 7, "crm": " C-1 "},
            "wechat_openid": " o-1 ",
        },
    }
    earlier = {**event, "ts": at - timedelta(days=1), "properties": {"email": "x@y.cn"}}
    assert [(line, b) for _, line, _, b, _ in _extract(tmp_path, [event, earlier])] == [
        (2, "customer_id:C1"),
        (2, "email:x@y.cn"),
        (1, "customer_id:C1"),
        (1, "email:li@example.com"),
        (1, "phone:+8613800000001"),
        (1, "wechat_openid:o-1"),
        (1, "external_id:crm:C-1"),
        (1, "external_id:erp:7"),
    ]
