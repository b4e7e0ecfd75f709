"""Explain an identity: which customer an identifier resolves to, and why.

Answers the operator's question "why is this device Li Ming's?" from the
stored identity graph: the cluster's members, the merges that built it (each
with the file and line of its evidence) and the conflicts that were refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perennial.config import Settings
from perennial.errors import PerennialError
from perennial.ingest.identifiers import normalize_email, normalize_phone
from perennial.ingest.identity_graph import NODE_KINDS, Node
from perennial.ingest.identity_resolution import CONFLICTS_TABLE, IDENTITIES_TABLE, MERGES_TABLE
from perennial.store.engine import connect
from perennial.store.warehouse import Warehouse

__all__ = ["IdentityExplanation", "UnknownIdentityError", "explain_identity", "parse_identity"]


class UnknownIdentityError(PerennialError):
    """The identifier is not in the identity graph (or is malformed)."""


@dataclass(frozen=True)
class IdentityExplanation:
    node: Node
    cluster_id: str
    customer_id: str | None
    members: list[tuple[str, str, datetime]]
    """(identity type, value, first seen) of every identifier in the cluster."""
    merges: list[dict[str, Any]]
    """The merges that joined the cluster, oldest first, with their evidence."""
    conflicts: list[dict[str, Any]]
    """Links refused because they would have merged this cluster with another customer."""


def parse_identity(text: str, phone_region: str = "CN") -> Node:
    """``phone:138 1234 5678`` -> the normalised node; kinds as in the identity graph."""
    kind, separator, value = text.partition(":")
    if not separator or kind not in NODE_KINDS or not value.strip():
        raise UnknownIdentityError(
            f"{text!r}: write TYPE:VALUE with TYPE one of {', '.join(NODE_KINDS)}"
        )
    normalised: str | None = value.strip()
    if kind == "phone":
        normalised = normalize_phone(value, phone_region)
    elif kind == "email":
        normalised = normalize_email(value)
    if not normalised:
        raise UnknownIdentityError(f"{text!r}: not a valid {kind}")
    return Node(kind, normalised)


def explain_identity(settings: Settings, node: Node) -> IdentityExplanation:
    snapshot = Warehouse(settings.warehouse).snapshot()
    identities = snapshot.paths(IDENTITIES_TABLE)
    if not identities:
        raise UnknownIdentityError(f"{node.key}: the identity graph is empty")
    con = connect(settings)
    try:
        found = con.execute(
            "SELECT cluster_id, customer_id FROM read_parquet(?) "
            "WHERE identity_type = ? AND identity_value = ?",
            [identities, node.kind, node.value],
        ).fetchall()
        if not found:
            raise UnknownIdentityError(f"{node.key}: not a known identifier")
        cluster_id, customer_id = found[0]
        members = con.execute(
            "SELECT identity_type, identity_value, first_seen_at FROM read_parquet(?) "
            "WHERE cluster_id = ? ORDER BY first_seen_at, identity_type, identity_value",
            [identities, cluster_id],
        ).fetchall()
        keys = [f"{kind}:{value}" for kind, value, _ in members]
        merges = _rows(con, snapshot.paths(MERGES_TABLE), "merged_at", keys)
        conflicts = _rows(con, snapshot.paths(CONFLICTS_TABLE), "at", keys)
    finally:
        con.close()
    return IdentityExplanation(node, cluster_id, customer_id, members, merges, conflicts)


def _rows(con: Any, paths: list[str], order: str, keys: list[str]) -> list[dict[str, Any]]:
    if not paths:
        return []
    result = con.execute(
        f"SELECT * FROM read_parquet(?) WHERE node_a IN (SELECT unnest(?)) "  # noqa: S608
        f'OR node_b IN (SELECT unnest(?)) ORDER BY "{order}"',
        [paths, keys, keys],
    )
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
