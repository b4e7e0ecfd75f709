"""Connected components in DuckDB: the same components as a plain union-find, in few rounds."""

from __future__ import annotations

import random
from itertools import pairwise

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.ingest.identity_components import label_components


def _labels(edges: list[tuple[int, int]]) -> tuple[dict[int, int], int]:
    """``label_components`` over ``edges`` (any order, repeats, either direction)."""
    pairs = {(min(u, v), max(u, v)) for u, v in edges if u != v}
    con = duckdb.connect()
    con.register(
        "drawn",
        pa.table(
            {"u": pa.array([u for u, _ in pairs], pa.int64()),
             "v": pa.array([v for _, v in pairs], pa.int64())}
        ),
    )  # fmt: skip
    rounds = label_components(con, "drawn", "labels")
    found = dict(con.execute("SELECT node, label FROM labels").fetchall())
    con.close()
    return found, rounds


def _smallest_of_each_component(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for u, v in edges:
        if u != v:
            low, high = sorted((find(u), find(v)))
            parent[high] = low
    return {node: find(node) for node in parent}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=60))
def test_every_node_is_labelled_with_the_smallest_node_of_its_component(
    edges: list[tuple[int, int]],
) -> None:
    found, _ = _labels(edges)
    assert found == _smallest_of_each_component(edges)


def test_a_long_path_numbered_at_random_is_one_component_in_a_few_rounds() -> None:
    order = list(range(20_000))
    random.Random(7).shuffle(order)  # noqa: S311 (a fixed test order)
    path = list(pairwise(order))

    found, rounds = _labels(path)

    assert set(found.values()) == {0}
    assert len(found) == 20_000
    assert rounds <= 12


def test_a_graph_without_edges_has_no_labels() -> None:
    assert _labels([]) == ({}, 0)
