"""Apply a batch's identity evidence to the stored identity graph.

Evidence comes from customer rows (a customer and their phone, e-mail, WeChat
ids) and from events (an event carrying both a customer id and an anonymous
id, and ``identify`` events whose properties name an e-mail, phone, WeChat id
or external ids: linked to the event's anonymous id, else its customer). Only
the clusters the batch touches are loaded, so the cost follows the batch, not
the size of the graph. The result commits with the batch's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson
import pyarrow as pa

from perennial.ingest.identifiers import normalize_email, normalize_phone
from perennial.ingest.identity_graph import IdentityGraph, Link, Membership, Node
from perennial.schema.tables import Table
from perennial.store.warehouse import Transaction

__all__ = [
    "CONFLICTS_TABLE",
    "IDENTITIES_SCHEMA",
    "IDENTITIES_TABLE",
    "MERGES_TABLE",
    "IdentityOutcome",
    "resolve_identities",
]

IDENTITIES_TABLE = "identities"
MERGES_TABLE = "identity_merges"
CONFLICTS_TABLE = "identity_conflicts"
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
_CUSTOMER_IDENTIFIERS = ("phone", "email", "wechat_openid", "wechat_unionid")


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
    if table.name == "customers":
        nodes, links = _customer_evidence(con, clock)
    else:
        nodes, links = _event_evidence(con, phone_region)
    if not nodes and not links:
        return IdentityOutcome(0, 0)
    graph = IdentityGraph.from_memberships(_touched_memberships(con, txn, nodes, links))
    for node, at in nodes:
        graph.add_node(node, at)
    for link in links:
        graph.link(link)
    _write_memberships(con, txn, graph.changed_memberships())
    _write_history(txn, graph)
    return IdentityOutcome(len(graph.merges), len(graph.conflicts))


def _customer_evidence(
    con: duckdb.DuckDBPyConnection, clock: datetime
) -> tuple[list[tuple[Node, datetime]], list[Link]]:
    rows = con.execute(
        f"""
        SELECT customer_id, coalesce(created_at, ?) AS seen_at, _source_file, _source_line,
               {", ".join(_CUSTOMER_IDENTIFIERS)}
        FROM batch_rows ORDER BY seen_at, _source_line
        """,  # noqa: S608 (fixed column names)
        [clock],
    ).fetchall()
    nodes: list[tuple[Node, datetime]] = []
    links: list[Link] = []
    for customer_id, at, source_file, line, *identifiers in rows:
        customer = Node("customer_id", customer_id)
        nodes.append((customer, at))
        for kind, value in zip(_CUSTOMER_IDENTIFIERS, identifiers, strict=True):
            if value is not None:
                links.append(
                    Link(
                        customer,
                        Node(kind, value),
                        f"customer record {kind}",
                        at,
                        source_file,
                        line,
                    )
                )
    return nodes, links


def _event_evidence(
    con: duckdb.DuckDBPyConnection, phone_region: str
) -> tuple[list[tuple[Node, datetime]], list[Link]]:
    anonymous = con.execute(
        """
        SELECT anonymous_id, min(ts) FROM batch_rows
        WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id ORDER BY anonymous_id
        """
    ).fetchall()
    nodes = [(Node("anonymous_id", anon), at) for anon, at in anonymous]
    rows = con.execute(
        """
        SELECT customer_id, anonymous_id, event_type, ts, properties, _source_file, _source_line
        FROM batch_rows
        WHERE (anonymous_id IS NOT NULL AND customer_id IS NOT NULL) OR event_type = 'identify'
        ORDER BY ts, _source_line
        """
    ).fetchall()
    links: list[Link] = []
    for customer_id, anonymous_id, event_type, ts, properties, source_file, line in rows:
        customer = Node("customer_id", customer_id) if customer_id is not None else None
        device = Node("anonymous_id", anonymous_id) if anonymous_id is not None else None
        reason = "identify event" if event_type == "identify" else f"{event_type} event"
        if device is not None and customer is not None:
            links.append(Link(device, customer, reason, ts, source_file, line))
        subject = device or customer
        if event_type == "identify" and properties and subject is not None:
            for trait in _traits(properties, phone_region):
                links.append(
                    Link(subject, trait, f"identify event {trait.kind}", ts, source_file, line)
                )
    return nodes, links


def _traits(properties: str, phone_region: str) -> list[Node]:
    """Identifiers an identify event names: e-mail and phone (normalised like customer
    records), WeChat ids, and ``external_ids`` (``{"crm": "C-1"}`` -> ``external_id:crm:C-1``)."""
    values = orjson.loads(properties)
    traits: list[Node] = []
    email = normalize_email(str(values["email"])) if values.get("email") else None
    phone = normalize_phone(str(values["phone"]), phone_region) if values.get("phone") else None
    if email:
        traits.append(Node("email", email))
    if phone:
        traits.append(Node("phone", phone))
    for kind in ("wechat_openid", "wechat_unionid"):
        value = values.get(kind)
        if isinstance(value, str) and value.strip():
            traits.append(Node(kind, value.strip()))
    external = values.get("external_ids")
    if isinstance(external, dict):
        for system, value in sorted(external.items()):
            if isinstance(value, str | int) and str(value).strip() and system:
                traits.append(Node("external_id", f"{system}:{str(value).strip()}"))
    return traits


def _touched_memberships(
    con: duckdb.DuckDBPyConnection,
    txn: Transaction,
    nodes: list[tuple[Node, datetime]],
    links: list[Link],
) -> list[Membership]:
    """Stored memberships of every cluster that one of the batch's nodes belongs to."""
    stored = txn.paths(IDENTITIES_TABLE)
    if not stored:
        return []
    touched = {node for node, _ in nodes} | {n for link in links for n in (link.a, link.b)}
    keys = pa.table(
        {
            "identity_type": [n.kind for n in touched],
            "identity_value": [n.value for n in touched],
        }
    )
    con.register("batch_nodes", keys)
    rows = con.execute(
        """
        WITH stored AS (SELECT * FROM read_parquet(?))
        SELECT identity_type, identity_value, cluster_id, customer_id, first_seen_at FROM stored
        WHERE cluster_id IN (
            SELECT s.cluster_id FROM stored s
            JOIN batch_nodes b USING (identity_type, identity_value))
        """,
        [stored],
    ).fetchall()
    con.unregister("batch_nodes")
    return [
        Membership(Node(kind, value), cluster, customer, seen)
        for kind, value, cluster, customer, seen in rows
    ]


def _write_memberships(
    con: duckdb.DuckDBPyConnection, txn: Transaction, changed: list[Membership]
) -> None:
    """Rewrite the identities table with the changed rows replacing their old versions."""
    if not changed:
        return
    updates = pa.Table.from_pylist(
        [
            {
                "identity_type": m.node.kind,
                "identity_value": m.node.value,
                "cluster_id": m.cluster_id,
                "customer_id": m.customer_id,
                "first_seen_at": m.first_seen_at,
            }
            for m in changed
        ],
        schema=IDENTITIES_SCHEMA,
    )
    old = txn.files(IDENTITIES_TABLE)
    if not old:
        txn.append_arrow(IDENTITIES_TABLE, updates)
        return
    con.register("identity_updates", updates)
    txn.replace_files(IDENTITIES_TABLE, old, [])
    txn.append_query(
        con,
        IDENTITIES_TABLE,
        """
        SELECT * FROM read_parquet(?, hive_partitioning = false) s ANTI JOIN identity_updates u
            USING (identity_type, identity_value)
        UNION ALL SELECT * FROM identity_updates
        """,
        partition_expr=None,
        params=[[str(txn.warehouse.root / f.path) for f in old]],
    )
    con.unregister("identity_updates")


def _write_history(txn: Transaction, graph: IdentityGraph) -> None:
    merges = [
        {
            "merged_at": m.merged_at,
            "node_a": m.node_a_key,
            "node_b": m.node_b_key,
            "from_cluster": m.from_cluster,
            "into_cluster": m.into_cluster,
            "customer_id": m.customer_id,
            "reason": m.reason,
            "source_file": m.source_file,
            "source_line": m.source_line,
            "batch_id": txn.batch_id,
        }
        for m in graph.merges
    ]
    conflicts = [
        {
            "at": c.at,
            "node_a": c.node_a_key,
            "node_b": c.node_b_key,
            "customer_a": c.customer_a,
            "customer_b": c.customer_b,
            "reason": c.reason,
            "source_file": c.source_file,
            "source_line": c.source_line,
            "batch_id": txn.batch_id,
        }
        for c in graph.conflicts
    ]
    txn.append_arrow(MERGES_TABLE, pa.Table.from_pylist(merges, schema=_MERGES_SCHEMA))
    txn.append_arrow(CONFLICTS_TABLE, pa.Table.from_pylist(conflicts, schema=_CONFLICTS_SCHEMA))
