"""Apply identity links in order, one independent chunk of the graph at a time.

The one-customer rule makes the result depend on order: a link that would join
two clusters holding different customers is refused (a conflict) and the first
claim stays. So the components that SQL cannot resolve on its own
(``replay`` and ``split`` in :mod:`perennial.ingest.identity_batch_graph`) have
their links applied one by one, in order, with union-find, as
:class:`perennial.ingest.identity_graph.IdentityGraph` defines, but over integers
and flat lists instead of objects, so a link costs about a microsecond.

Their nodes are numbered (``rid``) by component and, within one, by node key,
and whole components are grouped into chunks of consecutive numbers. A chunk is
loaded from DuckDB as arrays, resolved, and its results written back before the
next is read: memory follows the chunk, not the batch. Because numbers follow
key order, a cluster's smallest node is its smallest key, which is what names a
cluster without a customer; the root of each tree is kept at that node.

Results: ``identity_merge_rids(seq, from_rid, into_rid)``,
``identity_conflict_rids(seq, customer_a_rid, customer_b_rid)`` and
``identity_split_rids(rid, cluster_rid, customer_rid)`` (``-1``: none), where
``seq`` numbers ``identity_candidates`` (with the link's ``ord``) and ``rid``
numbers ``identity_active`` (with the node's type and value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.ingest.identity_batch_graph import COMPS, GROUPS, LINK_NODES, NODES, PAIRS

__all__ = [
    "ACTIVE",
    "CANDIDATES",
    "CHUNK_SIZE",
    "CONFLICT_RIDS",
    "MERGE_RIDS",
    "SPLIT_RIDS",
    "replay_links",
]

ACTIVE = "identity_active"
CANDIDATES = "identity_candidates"
MERGE_RIDS = "identity_merge_rids"
CONFLICT_RIDS = "identity_conflict_rids"
SPLIT_RIDS = "identity_split_rids"
_CANDIDATE_NIDS = "identity_candidate_nids"
_RESULT = "identity_chunk_result"

CHUNK_SIZE = 1_000_000
"""Nodes plus links per chunk (about 150 MB of Python lists); a component larger than
this is a chunk of its own."""

_NONE = -1

_EMPTY_PLAN = f"""
CREATE OR REPLACE TEMP TABLE {ACTIVE} (rid BIGINT, nid BIGINT, identity_type VARCHAR,
    identity_value VARCHAR, is_customer BOOLEAN, split BOOLEAN, rep BIGINT, chunk BIGINT);
CREATE OR REPLACE TEMP TABLE {CANDIDATES} (seq BIGINT, ord HUGEINT, a_nid BIGINT, b_nid BIGINT,
    a BIGINT, b BIGINT, chunk BIGINT);
"""


@dataclass
class _Chunk:
    """Union-find over the chunk's nodes, numbered from 0 (``rid - first``)."""

    first: int
    parent: list[int]
    customer: list[int]
    """At each root: the local number of the cluster's customer node, or ``_NONE``."""
    merges: tuple[list[int], list[int], list[int]] = field(default_factory=lambda: ([], [], []))
    conflicts: tuple[list[int], list[int], list[int]] = field(default_factory=lambda: ([], [], []))


def replay_links(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Number the nodes and links to replay, resolve every chunk; returns (merges, conflicts).

    The input and output tables exist afterwards even when nothing needed a replay.
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {MERGE_RIDS} (seq BIGINT, from_rid BIGINT, into_rid BIGINT);
        CREATE OR REPLACE TEMP TABLE {CONFLICT_RIDS}
            (seq BIGINT, customer_a_rid BIGINT, customer_b_rid BIGINT);
        CREATE OR REPLACE TEMP TABLE {SPLIT_RIDS}
            (rid BIGINT, cluster_rid BIGINT, customer_rid BIGINT);
        """
    )
    _plan(con, CHUNK_SIZE)
    chunks = con.execute(
        f"SELECT chunk, min(rid) FROM {ACTIVE} GROUP BY chunk ORDER BY chunk"  # noqa: S608
    ).fetchall()
    merges = conflicts = 0
    for number, first in chunks:
        chunk = _resolve_chunk(con, number, int(first))
        merges += len(chunk.merges[0])
        conflicts += len(chunk.conflicts[0])
    return merges, conflicts


def _plan(con: duckdb.DuckDBPyConnection, chunk_size: int) -> None:
    """``identity_active`` and ``identity_candidates``: the nodes and links to replay, all
    links of ``split`` components and the first link of each pair in ``replay`` ones."""
    needed = con.execute(
        f"SELECT EXISTS (FROM {COMPS} WHERE kind IN ('replay', 'split'))"
    ).fetchone()
    if not (needed and needed[0]):
        con.execute(_EMPTY_PLAN)
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_CANDIDATE_NIDS} AS
        SELECT l.ord, l.a_nid, l.b_nid, g.comp
        FROM {LINK_NODES} l JOIN {GROUPS} g ON g.grp = l.a_grp JOIN {COMPS} c USING (comp)
        WHERE c.kind = 'split'
        UNION ALL
        SELECT p.ord, p.a_nid, p.b_nid, g.comp
        FROM {PAIRS} p JOIN {GROUPS} g ON g.grp = p.g1 JOIN {COMPS} c USING (comp)
        WHERE c.kind = 'replay';

        CREATE OR REPLACE TEMP TABLE {ACTIVE} AS
        WITH links AS (SELECT comp, count(*) AS links FROM {_CANDIDATE_NIDS} GROUP BY comp),
        ranked AS (
            SELECT n.nid, n.identity_type, n.identity_value, n.grp, g.comp,
                   n.identity_type = 'customer_id' AS is_customer, c.kind = 'split' AS split,
                   k.links,
                   row_number() OVER (ORDER BY g.comp, n.nid) - 1 AS rid
            FROM {NODES} n JOIN {GROUPS} g USING (grp) JOIN {COMPS} c USING (comp)
            JOIN links k USING (comp)),
        sized AS (
            SELECT comp, min(rid) AS first_rid, count(*) + any_value(links) AS size
            FROM ranked GROUP BY comp),
        chunked AS (
            SELECT comp, coalesce(sum(size) OVER (
                ORDER BY first_rid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                // {int(chunk_size)} AS chunk
            FROM sized)
        SELECT r.rid, r.nid, r.identity_type, r.identity_value, r.is_customer, r.split,
               min(r.rid) OVER (PARTITION BY r.grp) AS rep, k.chunk
        FROM ranked r JOIN chunked k USING (comp);

        CREATE OR REPLACE TEMP TABLE {CANDIDATES} AS
        SELECT row_number() OVER (ORDER BY c.ord) AS seq, c.ord, c.a_nid, c.b_nid,
               a.rid AS a, b.rid AS b, a.chunk
        FROM {_CANDIDATE_NIDS} c
        JOIN {ACTIVE} a ON a.nid = c.a_nid JOIN {ACTIVE} b ON b.nid = c.b_nid;
        DROP TABLE {_CANDIDATE_NIDS};
        """  # noqa: S608 (fixed table names)
    )


def _resolve_chunk(con: duckdb.DuckDBPyConnection, number: int, first: int) -> _Chunk:
    """Load one chunk's nodes and links, apply the links, store the results."""
    nodes = con.execute(
        f"SELECT rep, is_customer, split FROM {ACTIVE} WHERE chunk = ? ORDER BY rid",  # noqa: S608
        [number],
    ).fetchnumpy()
    links = con.execute(
        f"SELECT seq, a, b FROM {CANDIDATES} WHERE chunk = ? ORDER BY seq",  # noqa: S608
        [number],
    ).fetchnumpy()
    chunk = _load(first, nodes["rep"], nodes["is_customer"])
    _apply(
        chunk,
        links["seq"].tolist(),
        (links["a"] - first).tolist(),
        (links["b"] - first).tolist(),
    )
    merged_seq, *merged_nodes = chunk.merges
    _store(con, MERGE_RIDS, merged_seq, merged_nodes, first)
    refused_seq, *refused_nodes = chunk.conflicts
    _store(con, CONFLICT_RIDS, refused_seq, refused_nodes, first)
    split_nodes, *split_clusters = _final(chunk, nodes["split"])
    _store(con, SPLIT_RIDS, [node + first for node in split_nodes], split_clusters, first)
    return chunk


def _load(first: int, rep: npt.NDArray[np.int64], is_customer: npt.NDArray[np.bool_]) -> _Chunk:
    """Stored clusters start joined under their smallest node, holding their customer."""
    parent = rep - first
    customer = np.full(parent.shape[0], _NONE, dtype=np.int64)
    customers = np.flatnonzero(is_customer)
    customer[parent[customers]] = customers
    return _Chunk(first, parent.tolist(), customer.tolist())


def _apply(chunk: _Chunk, seqs: list[int], sides_a: list[int], sides_b: list[int]) -> None:
    """Apply links in order: merge two clusters, skip a known link, or refuse a conflict.

    Cluster ids, as node numbers: the customer's node, else the smallest node (the root).
    """
    parent, customer = chunk.parent, chunk.customer
    merged_seq, merged_from, merged_into = chunk.merges
    refused_seq, refused_a, refused_b = chunk.conflicts
    for seq, a, b in zip(seqs, sides_a, sides_b, strict=True):
        root_a, root_b = _find(parent, a), _find(parent, b)
        if root_a == root_b:
            continue
        customer_a, customer_b = customer[root_a], customer[root_b]
        if customer_a != _NONE and customer_b != _NONE:
            refused_seq.append(seq)
            refused_a.append(customer_a)
            refused_b.append(customer_b)
            continue
        id_a = root_a if customer_a == _NONE else customer_a
        id_b = root_b if customer_b == _NONE else customer_b
        root, child = (root_a, root_b) if root_a < root_b else (root_b, root_a)
        parent[child] = root
        joined = customer_a if customer_a != _NONE else customer_b
        customer[root] = joined
        into = root if joined == _NONE else joined
        merged_seq.append(seq)
        merged_from.append(id_b if into == id_a else id_a)
        merged_into.append(into)


def _find(parent: list[int], node: int) -> int:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:  # path compression
        parent[node], node = root, parent[node]
    return root


def _final(chunk: _Chunk, split: npt.NDArray[np.bool_]) -> tuple[list[int], list[int], list[int]]:
    """(node, cluster id node, customer node) of the nodes whose final cluster is asked for."""
    nodes = np.flatnonzero(split).tolist()
    roots = [_find(chunk.parent, node) for node in nodes]
    customers = [chunk.customer[root] for root in roots]
    clusters = [root if c == _NONE else c for root, c in zip(roots, customers, strict=True)]
    return nodes, clusters, customers


def _store(
    con: duckdb.DuckDBPyConnection,
    table: str,
    keys: list[int],
    local_nodes: list[list[int]],
    first: int,
) -> None:
    """Append rows to ``table``: ``keys`` as they are, then node columns made global."""
    if not keys:
        return
    columns = [np.asarray(keys, dtype=np.int64)]
    for values in local_nodes:
        local = np.asarray(values, dtype=np.int64)
        columns.append(np.where(local == _NONE, _NONE, local + first))
    con.register(
        _RESULT,
        pa.table([pa.array(c) for c in columns], names=[f"c{i}" for i in range(len(columns))]),
    )
    con.execute(f"INSERT INTO {table} SELECT * FROM {_RESULT}")  # noqa: S608
    con.unregister(_RESULT)
