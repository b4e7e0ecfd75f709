"""Deterministic identity resolution: which identifiers belong to one customer.

Identifiers (a device, a phone, an e-mail, a WeChat id, the business's own
customer id) are nodes; a link says two nodes are the same person (an
``identify`` event, a customer row carrying a phone, two devices sharing an
e-mail). Connected nodes form a cluster, kept with union-find.

Three rules make the result safe to act on and reproducible:

* A cluster holds at most one ``customer_id`` node. Two known customers are
  never merged automatically (a shared family phone must not fuse two
  accounts): such a link is a :class:`Conflict`, recorded and not applied, and
  the first claim wins. Links are applied in the order given.
* A cluster's id depends only on its members, never on union order: the key of
  its customer node, else its smallest node key.
* Every merge is recorded (:class:`MergeRecord`) with the link that caused it,
  so "why is this device Li Ming's" has an answer (:meth:`IdentityGraph.explain`).

This class is the rules' definition, in memory, for small graphs. Ingest applies
the same rules to files of millions of rows on columns, in bounded memory
(:mod:`perennial.ingest.identity_resolution`); tests hold both to one reference.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "NODE_KINDS",
    "Conflict",
    "IdentityGraph",
    "Link",
    "LinkOutcome",
    "Membership",
    "MergeRecord",
    "Node",
]

CUSTOMER_ID = "customer_id"

NODE_KINDS: tuple[str, ...] = (
    CUSTOMER_ID,
    "anonymous_id",
    "phone",
    "email",
    "wechat_openid",
    "wechat_unionid",
    "external_id",
)
"""The identifier kinds; none is a prefix of another, so key order is (kind, value) order."""

_KINDS = frozenset(NODE_KINDS)


def _utc(at: datetime, what: str) -> datetime:
    """``at`` in UTC; a naive datetime is refused because its instant is unknowable."""
    if at.tzinfo is UTC:  # the common case, checked first: this runs once per link
        return at
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"{what} is a naive datetime ({at.isoformat()}); pass a timezone-aware UTC datetime"
        )
    return at.astimezone(UTC)


def _set_utc(instance: object, name: str) -> None:
    """Normalise a frozen dataclass's datetime field to UTC in ``__post_init__``."""
    value: datetime = getattr(instance, name)
    if value.tzinfo is not UTC:  # most are UTC already: build records cheaply
        object.__setattr__(instance, name, _utc(value, f"{type(instance).__name__}.{name}"))


@dataclass(frozen=True, order=True, slots=True)
class Node:
    """One identifier, such as ``Node("phone", "+8613812345678")``; values are pre-normalised."""

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown node kind {self.kind!r}; known: {', '.join(NODE_KINDS)}")
        if not self.value:
            raise ValueError(f"empty {self.kind} value: an empty identifier would join everyone")

    @property
    def key(self) -> str:
        """``kind:value``: the string the graph is keyed by and cluster ids are made of."""
        return f"{self.kind}:{self.value}"

    @classmethod
    def from_key(cls, key: str) -> Node:
        """The node whose :attr:`key` is ``key`` (kinds contain no colon, values may)."""
        kind, sep, value = key.partition(":")
        if not sep:
            raise ValueError(f"not a node key (expected kind:value): {key!r}")
        return cls(kind, value)


class LinkOutcome(StrEnum):
    """What :meth:`IdentityGraph.link` did."""

    MERGED = "merged"
    """Two separate clusters became one (a :class:`MergeRecord` was written)."""
    ALREADY_LINKED = "already_linked"
    """Both nodes were already in one cluster; nothing changed but first sightings."""
    CONFLICT = "conflict"
    """The link would join two known customers; not applied, a :class:`Conflict` was written."""


@dataclass(frozen=True, slots=True)
class Link:
    """Evidence that ``a`` and ``b`` are the same person, and where it came from."""

    a: Node
    b: Node
    reason: str
    at: datetime
    source_file: str
    source_line: int

    def __post_init__(self) -> None:
        _set_utc(self, "at")


@dataclass(frozen=True, slots=True)
class Membership:
    """A node's cluster as stored: flattened, one row per node."""

    node: Node
    cluster_id: str
    customer_id: str | None
    first_seen_at: datetime

    def __post_init__(self) -> None:
        _set_utc(self, "first_seen_at")


@dataclass(frozen=True, slots=True)
class Conflict:
    """A link that was refused because it would have merged two known customers."""

    at: datetime
    node_a_key: str
    node_b_key: str
    customer_a: str
    customer_b: str
    reason: str
    source_file: str
    source_line: int

    def __post_init__(self) -> None:
        _set_utc(self, "at")


@dataclass(frozen=True, slots=True)
class MergeRecord:
    """One applied link that joined two clusters: cluster ``from_cluster`` ceased to exist.

    ``into_cluster`` is the id of the joined cluster, always one of the two ids
    before the merge; ``customer_id`` is the joined cluster's customer, if any.
    """

    merged_at: datetime
    node_a_key: str
    node_b_key: str
    from_cluster: str
    into_cluster: str
    customer_id: str | None
    reason: str
    source_file: str
    source_line: int

    def __post_init__(self) -> None:
        _set_utc(self, "merged_at")


@dataclass(slots=True)
class _Root:
    """What union-find keeps per cluster (at its root) to name the cluster in O(1)."""

    size: int
    smallest_key: str
    customer_key: str | None

    @property
    def cluster_id(self) -> str:
        return self.customer_key if self.customer_key is not None else self.smallest_key


def _customer_value(customer_key: str | None) -> str | None:
    return None if customer_key is None else customer_key[len(CUSTOMER_ID) + 1 :]


_Stored = tuple[str, str | None, datetime]
"""A node's row as it was stored: cluster id, customer id, first seen."""


class IdentityGraph:
    """Union-find over node keys with the one-customer-per-cluster rule.

    Build it from the stored state (:meth:`from_memberships`; an empty graph is
    ``IdentityGraph()``), apply the batch's links in a deterministic order, then
    write back :meth:`changed_memberships`, :attr:`merges` and :attr:`conflicts`.
    """

    def __init__(self) -> None:
        self.merges: list[MergeRecord] = []
        """Applied links that joined two clusters, in the order applied."""
        self.conflicts: list[Conflict] = []
        """Refused links, in the order given."""
        self._parent: dict[str, str] = {}
        self._roots: dict[str, _Root] = {}
        self._first_seen: dict[str, datetime] = {}
        self._stored: dict[str, _Stored] = {}

    def __len__(self) -> int:
        """The number of nodes."""
        return len(self._parent)

    @classmethod
    def from_memberships(cls, memberships: Iterable[Membership]) -> IdentityGraph:
        """The graph as stored; ``ValueError`` when the stored state breaks the rules.

        Stored ids are not trusted: each cluster's id and customer are recomputed
        from its members, and any difference shows up in :meth:`changed_memberships`.
        """
        graph = cls()
        root_of_cluster: dict[str, str] = {}
        for membership in memberships:
            key = membership.node.key
            if key in graph._parent:
                raise ValueError(f"stored memberships list {key} more than once")
            graph._stored[key] = (
                membership.cluster_id,
                membership.customer_id,
                membership.first_seen_at,
            )
            graph._first_seen[key] = membership.first_seen_at
            graph._parent[key] = key
            graph._roots[key] = _Root(1, key, key if membership.node.kind == CUSTOMER_ID else None)
            first = root_of_cluster.setdefault(membership.cluster_id, key)
            if first != key:
                root = graph._find(first)
                held = graph._roots[root].customer_key
                if held is not None and membership.node.kind == CUSTOMER_ID:
                    raise ValueError(
                        f"stored cluster {membership.cluster_id} holds two customers "
                        f"({held} and {key}); a cluster may hold at most one"
                    )
                graph._union(root, key)
        return graph

    def add_node(self, node: Node, at: datetime) -> None:
        """Record a lone identifier (say, a customer with no other ids); idempotent."""
        self._sight(node.key, _utc(at, "at"), node.kind == CUSTOMER_ID)

    def link(self, link: Link) -> LinkOutcome:
        """Apply one link: merge two clusters, or note that it is known, or refuse it."""
        key_a, key_b = link.a.key, link.b.key
        self._sight(key_a, link.at, link.a.kind == CUSTOMER_ID)
        self._sight(key_b, link.at, link.b.kind == CUSTOMER_ID)
        root_a, root_b = self._find(key_a), self._find(key_b)
        if root_a == root_b:
            return LinkOutcome.ALREADY_LINKED
        cluster_a, cluster_b = self._roots[root_a], self._roots[root_b]
        customer_a, customer_b = cluster_a.customer_key, cluster_b.customer_key
        if customer_a is not None and customer_b is not None:
            self.conflicts.append(
                Conflict(
                    at=link.at,
                    node_a_key=key_a,
                    node_b_key=key_b,
                    customer_a=Node.from_key(customer_a).value,
                    customer_b=Node.from_key(customer_b).value,
                    reason=link.reason,
                    source_file=link.source_file,
                    source_line=link.source_line,
                )
            )
            return LinkOutcome.CONFLICT
        id_a, id_b = cluster_a.cluster_id, cluster_b.cluster_id
        joined = self._union(root_a, root_b)
        into = joined.cluster_id
        self.merges.append(
            MergeRecord(
                merged_at=link.at,
                node_a_key=key_a,
                node_b_key=key_b,
                from_cluster=id_b if into == id_a else id_a,
                into_cluster=into,
                customer_id=_customer_value(joined.customer_key),
                reason=link.reason,
                source_file=link.source_file,
                source_line=link.source_line,
            )
        )
        return LinkOutcome.MERGED

    def resolve(self, node: Node) -> str | None:
        """The customer id of ``node``'s cluster, or ``None`` (unknown node, or anonymous)."""
        key = node.key
        if key not in self._parent:
            return None
        return _customer_value(self._roots[self._find(key)].customer_key)

    def cluster_id(self, node: Node) -> str | None:
        """The id of ``node``'s cluster, or ``None`` for a node the graph has not seen."""
        key = node.key
        if key not in self._parent:
            return None
        return self._roots[self._find(key)].cluster_id

    def memberships(self) -> list[Membership]:
        """Every node with its current cluster, sorted by node key (so by kind, then value)."""
        first_seen = self._first_seen
        return [
            Membership(Node.from_key(key), cluster_id, customer_id, first_seen[key])
            for key, cluster_id, customer_id in self._current(sorted(self._parent))
        ]

    def changed_memberships(self) -> list[Membership]:
        """Rows to write back, sorted by node key.

        New nodes, and nodes whose cluster, customer or first sighting differs
        from the state this graph was built from (an earlier sighting must be
        stored too, or the next run would lose it).
        """
        stored, first_seen = self._stored, self._first_seen
        changed = [
            (key, cluster_id, customer_id)
            for key, cluster_id, customer_id in self._current(self._parent)
            if stored.get(key) != (cluster_id, customer_id, first_seen[key])
        ]
        changed.sort()  # keys are unique, so this orders by key
        return [
            Membership(Node.from_key(key), cluster_id, customer_id, first_seen[key])
            for key, cluster_id, customer_id in changed
        ]

    def explain(self, node: Node) -> list[MergeRecord]:
        """The merges, in order along the path, that tie ``node`` to its cluster's customer.

        Applied merge links form a tree over each cluster; nodes that were already
        together in the stored state count as joined (their own history was
        recorded when they were merged). Empty when the node is the customer, is
        not tied to one, or was tied to it before this graph was built.
        """
        start = node.key
        if start not in self._parent:
            return []
        target = self._roots[self._find(start)].customer_key
        if target is None or target == start:
            return []
        edges = self._explanation_edges()
        came_from: dict[str, tuple[str, MergeRecord | None]] = {}
        queue = deque([start])
        while queue and target not in came_from:
            key = queue.popleft()
            for other, record in edges.get(key, ()):
                if other != start and other not in came_from:
                    came_from[other] = (key, record)
                    queue.append(other)
        path: list[MergeRecord] = []
        step = target
        while step in came_from:
            step, via = came_from[step]
            if via is not None:
                path.append(via)
        path.reverse()
        return path

    def _explanation_edges(self) -> dict[str, list[tuple[str, MergeRecord | None]]]:
        """Merge links as edges, plus one hub per stored cluster joined to its members.

        The hub (a key no node can have) keeps a large stored cluster linear to search.
        """
        edges: dict[str, list[tuple[str, MergeRecord | None]]] = {}
        for record in self.merges:
            edges.setdefault(record.node_a_key, []).append((record.node_b_key, record))
            edges.setdefault(record.node_b_key, []).append((record.node_a_key, record))
        for key, stored in self._stored.items():
            hub = f"\x00stored:{stored[0]}"
            edges.setdefault(hub, []).append((key, None))
            edges.setdefault(key, []).append((hub, None))
        return edges

    # --- union-find ------------------------------------------------------------------

    def _sight(self, key: str, at: datetime, is_customer: bool) -> None:
        """Add ``key`` as its own cluster if new; keep its earliest sighting."""
        seen = self._first_seen.get(key)
        if seen is None:
            self._parent[key] = key
            self._roots[key] = _Root(1, key, key if is_customer else None)
            self._first_seen[key] = at
        elif at < seen:
            self._first_seen[key] = at

    def _find(self, key: str) -> str:
        root = key
        parent = self._parent
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    def _union(self, root_a: str, root_b: str) -> _Root:
        """Join two distinct roots (not both with a customer), the smaller under the larger.

        The joined cluster's id comes from its members (customer key, else the
        smallest key), so which root survives has no visible effect.
        """
        a, b = self._roots[root_a], self._roots[root_b]
        if a.size < b.size:
            root_a, root_b, a, b = root_b, root_a, b, a
        self._parent[root_b] = root_a
        a.size += b.size
        a.smallest_key = min(a.smallest_key, b.smallest_key)
        if a.customer_key is None:
            a.customer_key = b.customer_key
        del self._roots[root_b]
        return a

    def _current(self, keys: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
        """(node key, cluster id, customer id) for each of ``keys``, naming each root once."""
        named: dict[str, tuple[str, str | None]] = {}
        for key in keys:
            root = self._find(key)
            name = named.get(root)
            if name is None:
                cluster = self._roots[root]
                name = named[root] = (cluster.cluster_id, _customer_value(cluster.customer_key))
            yield key, name[0], name[1]
