"""The batch graph resolved in SQL (stars) and replayed (the rest), against a reference
and against the in-memory :class:`IdentityGraph` that ingest used before.

Links are put straight into the evidence tables, so random graphs of every shape
(stars around a customer or a device, chains, cycles, two customers fighting over
a phone, repeats) reach the resolution quickly, batch after batch on a stored graph.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.ingest import identity_union_find
from perennial.ingest.identity_evidence import LINKS, SIGHTINGS
from perennial.ingest.identity_graph import IdentityGraph, MergeRecord, Node
from perennial.ingest.identity_graph import Link as GraphLink
from perennial.ingest.identity_resolution import Evidence, resolve_evidence
from perennial.store.engine import connect
from perennial.store.warehouse import Warehouse
from tests.ingest.identity_reference import Link, ReferenceIdentities

T0 = datetime(2025, 3, 1, tzinfo=UTC)
_POOL = [
    *(f"customer_id:c{i}" for i in range(4)),
    *(f"anonymous_id:d{i}" for i in range(6)),
    *(f"phone:+86138000000{i:02d}" for i in range(4)),
    *(f"email:u{i}@example.com" for i in range(4)),
    "wechat_unionid:u-1",
]
_ANONYMOUS = [key for key in _POOL if not key.startswith("customer_id:")]


def _batch(pool: list[str]) -> st.SearchStrategy[list[Link]]:
    link = st.tuples(st.sampled_from(pool), st.sampled_from(pool), st.integers(0, 5))
    return st.lists(link, max_size=14).map(
        lambda drawn: [
            Link(T0 + timedelta(minutes=minute), line, 0, a, b, "identify event")
            for line, (a, b, minute) in enumerate(drawn, start=1)
        ]
    )


def _resolve(settings_: Settings, number: int, links: list[Link], seen: list[str]) -> None:
    """Put ``links`` and ``seen`` (keys sighted alone, at T0) in the evidence tables and
    resolve them as batch ``number``."""
    batch_id = f"20250301T000000-{number:08x}"
    con = connect(settings_)
    try:
        with Warehouse(settings_.warehouse).transaction(batch_id) as txn:
            con.register("drawn_links", _link_table(links))
            con.execute(
                f"""
                CREATE TEMP TABLE {LINKS} AS
                SELECT (epoch_us(linked_at)::HUGEINT * 1099511627776 + source_line) * 1048576
                           AS ord,
                       a_type, a_value, b_type, b_value, linked_at, source_line,
                       'identify' AS event_type
                FROM drawn_links
                """
            )
            con.execute(
                f"CREATE TEMP TABLE {SIGHTINGS} AS SELECT split_part(k, ':', 1) AS identity_type,"
                " k[strpos(k, ':') + 1:] AS identity_value, ?::TIMESTAMPTZ AS seen_at"
                " FROM unnest(?::VARCHAR[]) t(k)",
                [T0, seen],
            )
            resolve_evidence(con, txn, Evidence("events", "links.jsonl", batch_id))
    finally:
        con.close()


def _link_table(links: list[Link]) -> pa.Table:
    a = [link.a.split(":", 1) for link in links]
    b = [link.b.split(":", 1) for link in links]
    return pa.table(
        {
            "a_type": pa.array([k for k, _ in a], pa.string()),
            "a_value": pa.array([v for _, v in a], pa.string()),
            "b_type": pa.array([k for k, _ in b], pa.string()),
            "b_value": pa.array([v for _, v in b], pa.string()),
            "linked_at": pa.array([link.at for link in links], pa.timestamp("us", tz="UTC")),
            "source_line": pa.array([link.line for link in links], pa.int64()),
        }
    )


def _rows(settings_: Settings, table: str, columns: str) -> list[tuple[object, ...]]:
    paths = Warehouse(settings_.warehouse).snapshot().paths(table)
    if not paths:
        return []
    return duckdb.execute(f"SELECT {columns} FROM read_parquet(?)", [paths]).fetchall()


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_batch(_POOL), _batch(_ANONYMOUS)), min_size=1, max_size=3),
    st.lists(st.sampled_from(_POOL), max_size=3),
    st.sampled_from([1, 4, identity_union_find.CHUNK_SIZE]),
)
def test_random_graphs_resolve_exactly_as_the_reference_batch_after_batch(
    batches: list[list[Link]], seen: list[str], chunk_size: int
) -> None:
    reference = ReferenceIdentities()
    merges, conflicts = Counter[tuple[object, ...]](), Counter[tuple[object, ...]]()
    with (
        tempfile.TemporaryDirectory() as home,
        patch.object(identity_union_find, "CHUNK_SIZE", chunk_size),
    ):
        store = Settings(home=Path(home))
        graph = IdentityGraph()  # what ingest ran before, for the same links
        for number, links in enumerate(batches):
            sightings = [(key, T0) for key in seen] if number == 0 else []
            expected = reference.apply_links(sightings, links, "links.jsonl")
            merges.update(expected[0])
            conflicts.update(expected[1])
            _resolve(store, number, links, seen if number == 0 else [])
            _apply_to_graph(graph, sightings, links)

        stored = _rows(store, "identities", "*")
        assert {(t, v): (c, u, s) for t, v, c, u, s in stored} == reference.identities()
        assert len(stored) == len(reference.identities())
        assert Counter(_rows(store, "identity_merges", "* EXCLUDE (batch_id)")) == merges
        assert Counter(_rows(store, "identity_conflicts", "* EXCLUDE (batch_id)")) == conflicts
        assert Counter(_merge_fields(m) for m in graph.merges) == Counter(
            m[:7] for m in merges.elements()
        )
        assert {(m.node.kind, m.node.value): (m.cluster_id, m.customer_id, m.first_seen_at)
                for m in graph.memberships()} == reference.identities()  # fmt: skip


def _apply_to_graph(
    graph: IdentityGraph, sightings: list[tuple[str, datetime]], links: list[Link]
) -> None:
    for key, at in sightings:
        graph.add_node(Node.from_key(key), at)
    for link in sorted(links, key=lambda each: (each.at, each.line, each.place)):
        graph.link(
            GraphLink(
                Node.from_key(link.a), Node.from_key(link.b), link.reason, link.at, "f", link.line
            )
        )


def _merge_fields(record: MergeRecord) -> tuple[object, ...]:
    return (
        record.merged_at,
        record.node_a_key,
        record.node_b_key,
        record.from_cluster,
        record.into_cluster,
        record.customer_id,
        record.reason,
    )
