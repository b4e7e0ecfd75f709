"""Apply a batch's identity evidence to the stored identity graph.

Evidence comes from customer rows (a customer and their phone, e-mail, WeChat
ids) and from events (an event carrying both a customer id and an anonymous
id, and ``identify`` events whose properties name an e-mail, phone, WeChat id
or external ids: linked to the event's anonymous id, else its customer). Only
the clusters the batch touches are loaded, so the cost follows the batch, not
the size of the graph. The result commits with the batch's data.

The rules are :class:`perennial.ingest.identity_graph.IdentityGraph`'s; the work
is done on columns so that a file of millions of customers resolves in memory
bounded by ``duckdb_memory_limit`` (a Python graph of it took 5 GB per million):

1. evidence as views over the batch's files (:mod:`~perennial.ingest.identity_evidence`);
2. the touched graph, its components and their shapes as DuckDB tables
   (:mod:`~perennial.ingest.identity_batch_graph`);
3. the few components whose order matters replayed in Python, a chunk of whole
   components at a time (:mod:`~perennial.ingest.identity_union_find`);
4. memberships written here, merges and conflicts by
   :mod:`~perennial.ingest.identity_history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from perennial.ingest.identity_batch_graph import COMPS, GROUPS, NODES, WORK_TABLES, build_graph
from perennial.ingest.identity_evidence import LINKS, SIGHTINGS, TRAITS, extract_evidence
from perennial.ingest.identity_history import (
    CONFLICTS_TABLE,
    HISTORY_TABLES,
    MERGES_TABLE,
    Evidence,
    write_conflicts,
    write_merges,
)
from perennial.ingest.identity_union_find import (
    ACTIVE,
    CANDIDATES,
    CONFLICT_RIDS,
    MERGE_RIDS,
    SPLIT_RIDS,
    replay_links,
)
from perennial.schema.tables import Table
from perennial.store.warehouse import Transaction

__all__ = [
    "CONFLICTS_TABLE",
    "IDENTITIES_SCHEMA",
    "IDENTITIES_TABLE",
    "MERGES_TABLE",
    "Evidence",
    "IdentityOutcome",
    "resolve_evidence",
    "resolve_identities",
]

IDENTITIES_TABLE = "identities"
_TS = pa.timestamp("us", tz="UTC")
IDENTITIES_SCHEMA = pa.schema(
    [
        ("identity_type", pa.string()),
        ("identity_value", pa.string()),
        ("cluster_id", pa.string()),
        ("customer_id", pa.string()),
        ("first_seen_at", _TS),
    ]
)
_MERGES_SCHEMA = pa.schema(
    [
        ("merged_at", _TS),
        ("node_a", pa.string()),
        ("node_b", pa.string()),
        ("from_cluster", pa.string()),
        ("into_cluster", pa.string()),
        ("customer_id", pa.string()),
        ("reason", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("batch_id", pa.string()),
    ]
)
_CONFLICTS_SCHEMA = pa.schema(
    [
        ("at", _TS),
        ("node_a", pa.string()),
        ("node_b", pa.string()),
        ("customer_a", pa.string()),
        ("customer_b", pa.string()),
        ("reason", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("batch_id", pa.string()),
    ]
)
_CHANGED = "identity_changed"


@dataclass(frozen=True)
class IdentityOutcome:
    merges: int
    conflicts: int


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    table: Table,
    clock: datetime,
    phone_region: str,
) -> IdentityOutcome:
    """Link the identifiers in the rows this batch added to ``table``."""
    new_files = [p for p in txn.paths(table.name) if f"part-{txn.batch_id}-" in p]
    if table.name not in ("customers", "events") or not new_files:
        return IdentityOutcome(0, 0)
    # Files written by this batch may be rewrites holding older rows (latest_wins):
    # only rows stamped with this batch are new evidence.
    con.read_parquet(new_files, hive_partitioning=False).filter(
        duckdb.ColumnExpression("_batch_id") == duckdb.ConstantExpression(txn.batch_id)
    ).to_view("batch_rows", replace=True)
    try:
        if not extract_evidence(con, table.name, new_files, txn.batch_id, clock, phone_region):
            return IdentityOutcome(0, 0)
        return resolve_evidence(con, txn, Evidence(table.name, _source_file(con), txn.batch_id))
    finally:
        _drop_work_tables(con)


def resolve_evidence(
    con: duckdb.DuckDBPyConnection, txn: Transaction, evidence: Evidence
) -> IdentityOutcome:
    """Apply the links and sightings already in ``identity_links``/``identity_sightings``
    (:mod:`perennial.ingest.identity_evidence`) to the stored graph, within ``txn``."""
    build_graph(con, txn.paths(IDENTITIES_TABLE))
    _, conflicts = replay_links(con)
    _write_memberships(con, txn)
    merges = write_merges(con, txn, evidence)
    return IdentityOutcome(merges, write_conflicts(con, txn, evidence) if conflicts else 0)


def _source_file(con: duckdb.DuckDBPyConnection) -> str:
    """The batch's one source file (kept out of the link tables: millions of copies)."""
    files = con.execute("SELECT DISTINCT _source_file FROM batch_rows").fetchall()
    if len(files) != 1:
        raise ValueError(f"a batch reads one source file, this one {len(files)}")
    return str(files[0][0])


def _write_memberships(con: duckdb.DuckDBPyConnection, txn: Transaction) -> None:
    """Rewrite the identities table with the changed rows replacing their old versions.

    Changed: new nodes, and nodes whose cluster, customer or first sighting differs
    from the stored row (an earlier sighting must be stored, or the next batch would
    lose it). A component with at most one customer is one cluster; the clusters of
    one with several come from the replay.
    """
    changed = f"""
        WITH split AS (
            SELECT node.nid, {_key("cluster")} AS cluster_id,
                   customer.identity_value AS customer_id
            FROM {SPLIT_RIDS} s
            JOIN {ACTIVE} node ON node.rid = s.rid
            JOIN {ACTIVE} cluster ON cluster.rid = s.cluster_rid
            LEFT JOIN {ACTIVE} customer ON customer.rid = s.customer_rid),
        final AS (
            SELECT n.identity_type, n.identity_value,
                   CASE WHEN c.kind = 'split' THEN s.cluster_id ELSE c.cluster_id END
                       AS cluster_id,
                   CASE WHEN c.kind = 'split' THEN s.customer_id ELSE c.customer_id END
                       AS customer_id,
                   least(n.stored_seen, n.batch_seen) AS first_seen_at,
                   n.stored, n.stored_cluster, n.stored_customer, n.stored_seen
            FROM {NODES} n JOIN {GROUPS} g USING (grp) JOIN {COMPS} c USING (comp)
            LEFT JOIN split s USING (nid))
        SELECT identity_type, identity_value, cluster_id, customer_id, first_seen_at
        FROM final
        WHERE NOT stored
           OR cluster_id IS DISTINCT FROM stored_cluster
           OR customer_id IS DISTINCT FROM stored_customer
           OR first_seen_at IS DISTINCT FROM stored_seen
        """  # noqa: S608 (fixed table names)
    old = txn.files(IDENTITIES_TABLE)
    if not old:  # the first batch: every row is new (an empty result adds no file)
        txn.append_query(con, IDENTITIES_TABLE, changed, partition_expr=None)
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_CHANGED} AS {changed}")
    found = con.execute(f"SELECT count(*) FROM {_CHANGED}").fetchone()  # noqa: S608
    if not found or not found[0]:
        return
    txn.replace_files(IDENTITIES_TABLE, old, [])
    txn.append_query(
        con,
        IDENTITIES_TABLE,
        f"""
        SELECT * FROM read_parquet(?, hive_partitioning = false) s
        ANTI JOIN {_CHANGED} u USING (identity_type, identity_value)
        UNION ALL SELECT * FROM {_CHANGED}
        """,  # noqa: S608 (fixed table names)
        partition_expr=None,
        params=[[str(txn.warehouse.root / f.path) for f in old]],
    )


def _key(alias: str) -> str:
    return f"{alias}.identity_type || ':' || {alias}.identity_value"


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Free the batch's work tables (the connection lives on for the rest of the ingest)."""
    names = (*WORK_TABLES, TRAITS, ACTIVE, CANDIDATES, MERGE_RIDS, CONFLICT_RIDS, SPLIT_RIDS)
    for name in (*names, *HISTORY_TABLES, _CHANGED):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    for view in (LINKS, SIGHTINGS, "batch_rows"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
