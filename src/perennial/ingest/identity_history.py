"""The batch's merge and conflict records, written from the resolved graph's tables.

Every applied link that joined two clusters is a merge: which cluster ceased to
exist (``from_cluster``), the one it joined (``into_cluster``, always one of the
two ids before the merge) and the evidence. A cluster's id is its customer's
key, else its smallest key.

In a star component (:mod:`perennial.ingest.identity_batch_graph`) the merges
follow from the order of its pairs alone: pair ``k`` joins the centre's cluster
so far (the centre group and the leaves of the pairs before ``k``) with leaf
``k`` as stored. The centre side's customer and smallest node are running
aggregates over the earlier pairs (a window), so these merges, nearly all of a
batch's, are one SQL query. The other merges come from the union-find replay.

Merges are first computed as node numbers, then named in one pass over the
links; ids that are neither end of their link (rare) are looked up on their own,
so no query joins the whole node table more than once and each fits a small
``duckdb_memory_limit`` by spilling.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from perennial.ingest.identity_batch_graph import COMPS, GROUPS, NODES, PAIRS
from perennial.ingest.identity_evidence import LINKS, link_reason
from perennial.ingest.identity_union_find import ACTIVE, CANDIDATES, CONFLICT_RIDS, MERGE_RIDS
from perennial.store.warehouse import Transaction

__all__ = [
    "CONFLICTS_TABLE",
    "HISTORY_TABLES",
    "MERGES_TABLE",
    "Evidence",
    "write_conflicts",
    "write_merges",
]

MERGES_TABLE = "identity_merges"
CONFLICTS_TABLE = "identity_conflicts"
_MERGED = "identity_merged"
_NAMED = "identity_named"
HISTORY_TABLES = (_MERGED, _NAMED)

_STAR_MERGES = f"""
WITH pairs AS (
    SELECT p.ord, p.a_nid, p.b_nid, x.comp, c.kind, c.centre AS centre_grp,
           c.centre_customer, leaf.grp AS leaf_grp, leaf.customer_nid AS leaf_customer
    FROM {PAIRS} p JOIN {GROUPS} x ON x.grp = p.g1 JOIN {COMPS} c ON c.comp = x.comp
    JOIN {GROUPS} leaf ON leaf.grp = CASE WHEN p.g1 = c.centre THEN p.g2 ELSE p.g1 END
    WHERE c.kind IN ('simple', 'star')),
before AS (
    SELECT * EXCLUDE (kind), NULL::BIGINT AS prior_smallest, NULL::BIGINT AS prior_customer
    FROM pairs WHERE kind = 'simple'
    UNION ALL
    SELECT * EXCLUDE (kind),
           min(leaf_grp) OVER earlier AS prior_smallest,
           max(leaf_customer) OVER earlier AS prior_customer
    FROM pairs WHERE kind = 'star'
    WINDOW earlier AS (PARTITION BY comp ORDER BY ord
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
sides AS (
    SELECT ord, a_nid, b_nid, leaf_grp, leaf_customer,
           coalesce(centre_customer, prior_customer) AS centre_side_customer,
           least(centre_grp, prior_smallest) AS centre_side_smallest
    FROM before),
joined AS (
    SELECT ord, a_nid, b_nid,
           coalesce(centre_side_customer, centre_side_smallest) AS centre_id,
           coalesce(leaf_customer, leaf_grp) AS leaf_id,
           coalesce(centre_side_customer, leaf_customer,
                    least(centre_side_smallest, leaf_grp)) AS into_nid
    FROM sides)
SELECT ord, a_nid, b_nid, CASE WHEN into_nid = centre_id THEN leaf_id ELSE centre_id END
       AS from_nid, into_nid
FROM joined
"""  # noqa: S608 (fixed table names)
"""Per pair of a star component, its merge: (link, ends, vanishing id, surviving id), as
node numbers. ``grp`` is a group's smallest node, ``customer_nid`` its customer's."""

_REPLAYED_MERGES = f"""
SELECT k.ord, k.a_nid, k.b_nid, f.nid AS from_nid, i.nid AS into_nid
FROM {MERGE_RIDS} m JOIN {CANDIDATES} k USING (seq)
JOIN {ACTIVE} f ON f.rid = m.from_rid JOIN {ACTIVE} i ON i.rid = m.into_rid
"""  # noqa: S608 (fixed table names)

_LINK_TEXT = """
SELECT ord, linked_at, source_line, event_type, b_type,
       a_type || ':' || a_value AS node_a, b_type || ':' || b_value AS node_b
FROM {links}
"""


@dataclass(frozen=True)
class Evidence:
    """What every merge and conflict of the batch shares: its table, file and batch."""

    table: str
    source_file: str
    batch_id: str


def write_merges(con: duckdb.DuckDBPyConnection, txn: Transaction, evidence: Evidence) -> int:
    """Append the batch's merges, each with its evidence; returns how many."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_MERGED} AS
        {_STAR_MERGES} UNION ALL {_REPLAYED_MERGES};
        CREATE OR REPLACE TEMP TABLE {_NAMED} AS
        SELECT nid, identity_type || ':' || identity_value AS node_key FROM {NODES}
        SEMI JOIN (
            SELECT from_nid AS nid FROM {_MERGED} WHERE from_nid NOT IN (a_nid, b_nid)
            UNION ALL
            SELECT into_nid FROM {_MERGED} WHERE into_nid NOT IN (a_nid, b_nid)) USING (nid);
        """  # noqa: S608 (fixed table names)
    )
    named = "CASE m.{0} WHEN m.a_nid THEN l.node_a WHEN m.b_nid THEN l.node_b ELSE {1}.node_key END"
    return txn.append_query(
        con,
        MERGES_TABLE,
        f"""
        SELECT merged_at, node_a, node_b, from_cluster, into_cluster,
               CASE WHEN starts_with(into_cluster, 'customer_id:') THEN into_cluster[13:] END
                   AS customer_id,
               reason, source_file, source_line, batch_id
        FROM (
            SELECT l.linked_at AS merged_at, l.node_a, l.node_b,
                   {named.format("from_nid", "f")} AS from_cluster,
                   {named.format("into_nid", "i")} AS into_cluster,
                   {link_reason(evidence.table, "l")} AS reason,
                   ?::VARCHAR AS source_file, l.source_line, ?::VARCHAR AS batch_id
            FROM {_MERGED} m JOIN ({_LINK_TEXT.format(links=LINKS)}) l USING (ord)
            LEFT JOIN {_NAMED} f ON f.nid = m.from_nid
            LEFT JOIN {_NAMED} i ON i.nid = m.into_nid)
        """,  # noqa: S608 (fixed table names)
        partition_expr=None,
        params=[evidence.source_file, evidence.batch_id],
    )


def write_conflicts(con: duckdb.DuckDBPyConnection, txn: Transaction, evidence: Evidence) -> int:
    """Append the refused links, each with the two customers it would have joined."""
    return txn.append_query(
        con,
        CONFLICTS_TABLE,
        f"""
        SELECT l.linked_at AS "at", l.node_a, l.node_b,
               a.identity_value AS customer_a, b.identity_value AS customer_b,
               {link_reason(evidence.table, "l")} AS reason, ?::VARCHAR AS source_file,
               l.source_line, ?::VARCHAR AS batch_id
        FROM {CONFLICT_RIDS} x JOIN {CANDIDATES} k USING (seq)
        JOIN ({_LINK_TEXT.format(links=LINKS)}) l USING (ord)
        JOIN {ACTIVE} a ON a.rid = x.customer_a_rid
        JOIN {ACTIVE} b ON b.rid = x.customer_b_rid
        """,  # noqa: S608 (fixed table names)
        partition_expr=None,
        params=[evidence.source_file, evidence.batch_id],
    )
