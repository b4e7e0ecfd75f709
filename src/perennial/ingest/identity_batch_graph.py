"""The part of the identity graph a batch touches, as DuckDB tables ready to resolve.

From the batch's evidence (:mod:`perennial.ingest.identity_evidence`) and the
stored ``identities`` table this builds, in SQL so that it spills instead of
filling Python's heap:

* ``identity_nodes``: every node the batch names and every member of a stored
  cluster one of them belongs to, numbered in key order (``nid``), so the
  smallest key of any set of nodes is its smallest number, with its stored row,
  if any, and its group (``grp``): stored clusters start joined, under their
  smallest number; a new node is a group of its own;
* ``identity_groups``: per group, its component (``comp``) and its customer's
  node (``customer_nid``), if any;
* ``identity_pairs``: the first link between each two groups (``g1 < g2``);
* ``identity_comps``: per component, its final cluster when it holds at most one
  customer, and how it must be resolved (``kind``):

  - ``none``: one group, no link between groups: nothing merges;
  - ``simple`` and ``star``: at most one customer, and the pairs form a star (a
    tree with one group, the ``centre``, in every pair). Every pair is then a
    merge of the centre's cluster so far with a leaf group as stored, so merges
    are computed in SQL (:mod:`perennial.ingest.identity_history`): a customer
    row and its phone and e-mail, a device and the customer and contacts it
    identified with; nearly every component. In a ``simple`` star the centre's
    cluster id never changes (one pair, or the centre holds the customer, or
    holds the smallest key of an anonymous component); in a ``star`` it does;
  - ``replay``: at most one customer, any other shape: its pairs are applied in
    order (:mod:`perennial.ingest.identity_union_find`);
  - ``split``: two or more customers: all its links are applied in order,
    because which claim comes first decides the conflicts.

Links inside one group join nothing and are dropped; so are repeats of a pair
where no conflict can happen.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from perennial.ingest.identity_components import label_components
from perennial.ingest.identity_evidence import LINKS, SIGHTINGS

__all__ = ["COMPS", "GROUPS", "LINK_NODES", "NODES", "PAIRS", "WORK_TABLES", "build_graph"]

NODES = "identity_nodes"
GROUPS = "identity_groups"
PAIRS = "identity_pairs"
COMPS = "identity_comps"
LINK_NODES = "identity_link_nodes"
_BATCH_NODES = "identity_batch_nodes"
_STORED = "identity_stored"
_GROUP_EDGES = "identity_group_edges"
_GROUP_LABELS = "identity_group_labels"
WORK_TABLES = (_BATCH_NODES, _STORED, NODES, LINK_NODES, _GROUP_LABELS, GROUPS, PAIRS, COMPS)
_KEY = "identity_type || ':' || identity_value"


def build_graph(con: duckdb.DuckDBPyConnection, stored_paths: Sequence[str]) -> None:
    """Build the tables above from ``identity_links``/``identity_sightings`` and the stored
    ``identities`` files; ``ValueError`` when the stored state breaks the graph's rules."""
    _batch_nodes(con)
    _stored_clusters(con, stored_paths)
    _nodes(con)
    _groups(con)
    _comps(con)


def _batch_nodes(con: duckdb.DuckDBPyConnection) -> None:
    """Every identifier the batch names, with its earliest sighting in the batch."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_BATCH_NODES} AS
        SELECT identity_type, identity_value, min(seen_at) AS seen_at FROM (
            SELECT identity_type, identity_value, seen_at FROM {SIGHTINGS}
            UNION ALL SELECT a_type, a_value, linked_at FROM {LINKS}
            UNION ALL SELECT b_type, b_value, linked_at FROM {LINKS})
        GROUP BY identity_type, identity_value
        """  # noqa: S608 (fixed table names)
    )


def _stored_clusters(con: duckdb.DuckDBPyConnection, stored_paths: Sequence[str]) -> None:
    """The stored rows of every cluster one of the batch's nodes belongs to."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_STORED} (identity_type VARCHAR, identity_value VARCHAR,
            cluster_id VARCHAR, customer_id VARCHAR, first_seen_at TIMESTAMPTZ)
        """
    )
    if not stored_paths:
        return
    con.execute(
        f"""
        INSERT INTO {_STORED}
        WITH stored AS (
            SELECT identity_type, identity_value, cluster_id, customer_id, first_seen_at
            FROM read_parquet(?, hive_partitioning = false))
        SELECT * FROM stored WHERE cluster_id IN (
            SELECT s.cluster_id FROM stored s
            SEMI JOIN {_BATCH_NODES} b USING (identity_type, identity_value))
        """,  # noqa: S608 (fixed table names)
        [list(stored_paths)],
    )
    _check_stored(con)


def _check_stored(con: duckdb.DuckDBPyConnection) -> None:
    """Stored ids are recomputed, not trusted; but a node twice, or a cluster with two
    customers, cannot be repaired by recomputing."""
    twice = con.execute(
        f"""
        SELECT {_KEY} FROM {_STORED}
        GROUP BY identity_type, identity_value HAVING count(*) > 1 LIMIT 1
        """  # noqa: S608 (fixed table names)
    ).fetchone()
    if twice:
        raise ValueError(f"stored memberships list {twice[0]} more than once")
    two = con.execute(
        f"""
        SELECT cluster_id, min(identity_value), max(identity_value) FROM {_STORED}
        WHERE identity_type = 'customer_id' GROUP BY cluster_id HAVING count(*) > 1 LIMIT 1
        """  # noqa: S608 (fixed table names)
    ).fetchone()
    if two:
        raise ValueError(
            f"stored cluster {two[0]} holds two customers (customer_id:{two[1]} and "
            f"customer_id:{two[2]}); a cluster may hold at most one"
        )


def _nodes(con: duckdb.DuckDBPyConnection) -> None:
    """Number the nodes in key order, group stored clusters, and number each link's ends."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {NODES} AS
        WITH numbered AS MATERIALIZED (
            SELECT row_number() OVER (ORDER BY identity_type, identity_value) AS nid,
                   identity_type, identity_value,
                   s.cluster_id IS NOT NULL AS stored, s.cluster_id AS stored_cluster,
                   s.customer_id AS stored_customer, s.first_seen_at AS stored_seen,
                   b.seen_at AS batch_seen
            FROM {_BATCH_NODES} b FULL JOIN {_STORED} s USING (identity_type, identity_value)),
        reps AS (
            SELECT stored_cluster, min(nid) AS rep FROM numbered WHERE stored
            GROUP BY stored_cluster)
        SELECT n.*, coalesce(r.rep, n.nid) AS grp
        FROM numbered n LEFT JOIN reps r USING (stored_cluster);
        DROP TABLE {_BATCH_NODES};
        DROP TABLE {_STORED};
        CREATE OR REPLACE TEMP TABLE {LINK_NODES} AS
        SELECT l.ord, a.nid AS a_nid, b.nid AS b_nid, a.grp AS a_grp, b.grp AS b_grp
        FROM {LINKS} l
        JOIN {NODES} a ON a.identity_type = l.a_type AND a.identity_value = l.a_value
        JOIN {NODES} b ON b.identity_type = l.b_type AND b.identity_value = l.b_value
        WHERE a.grp <> b.grp;
        CREATE OR REPLACE TEMP TABLE {PAIRS} AS
        SELECT least(a_grp, b_grp) AS g1, greatest(a_grp, b_grp) AS g2, min(ord) AS ord,
               arg_min(a_nid, ord) AS a_nid, arg_min(b_nid, ord) AS b_nid
        FROM {LINK_NODES} GROUP BY g1, g2;
        """  # noqa: S608 (fixed table names)
    )


def _groups(con: duckdb.DuckDBPyConnection) -> None:
    """Each group's component (over the pairs) and customer node. A group's smallest
    number, ``grp``, is its smallest key: with its customer, all that names a cluster."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {_GROUP_EDGES} AS "  # noqa: S608 (fixed table names)
        f"SELECT g1 AS u, g2 AS v FROM {PAIRS}"
    )
    label_components(con, _GROUP_EDGES, _GROUP_LABELS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {GROUPS} AS
        SELECT n.grp, coalesce(any_value(g.label), n.grp) AS comp,
               max(n.nid) FILTER (WHERE n.identity_type = 'customer_id') AS customer_nid
        FROM {NODES} n LEFT JOIN {_GROUP_LABELS} g ON g.node = n.grp
        GROUP BY n.grp;
        DROP VIEW {_GROUP_EDGES};
        DROP TABLE {_GROUP_LABELS};
        """  # noqa: S608 (fixed table names)
    )


def _comps(con: duckdb.DuckDBPyConnection) -> None:
    """Each component's final cluster (when at most one customer), its star's centre
    (the group in every pair, when there is one) and its customer, and how to resolve it."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {COMPS} AS
        WITH members AS (
            SELECT comp, count(*) AS groups, count(customer_nid) AS customers,
                   coalesce(max(customer_nid), min(grp)) AS cluster_nid
            FROM {GROUPS} GROUP BY comp),
        degrees AS (
            SELECT grp, count(*) AS degree
            FROM (SELECT g1 AS grp FROM {PAIRS} UNION ALL SELECT g2 FROM {PAIRS})
            GROUP BY grp),
        shapes AS (
            SELECT g.comp, sum(d.degree) // 2 AS pairs, max(d.degree) AS widest,
                   arg_max(g.grp, d.degree) AS centre
            FROM degrees d JOIN {GROUPS} g USING (grp) GROUP BY g.comp)
        SELECT m.comp,
               CASE WHEN m.customers > 1 THEN 'split'
                    WHEN s.pairs IS NULL THEN 'none'
                    WHEN s.pairs <> m.groups - 1 OR s.widest <> s.pairs THEN 'replay'
                    WHEN s.pairs = 1 OR c.customer_nid IS NOT NULL
                         OR m.customers = 0 AND s.centre = m.cluster_nid THEN 'simple'
                    ELSE 'star' END AS kind,
               s.centre, c.customer_nid AS centre_customer,
               CASE WHEN m.customers <= 1 THEN {_KEY} END AS cluster_id,
               CASE WHEN m.customers = 1 THEN n.identity_value END AS customer_id
        FROM members m LEFT JOIN shapes s USING (comp) LEFT JOIN {GROUPS} c ON c.grp = s.centre
        JOIN {NODES} n ON n.nid = m.cluster_nid
        """  # noqa: S608 (fixed table names)
    )
