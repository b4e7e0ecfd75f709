"""Identity resolution as docs/data-model.md states it, in plain Python, for property tests.

Deliberately naive (clusters are frozensets, every link rebuilds one) so that it is
obviously the documented rule: evidence per row, links applied in order of time,
then line, then place in the row; a link joining two clusters with different
customers is refused; a cluster is named by its customer, else its smallest key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from perennial.ingest.identifiers import normalize_email, normalize_phone

Row = dict[str, Any]
Merge = tuple[datetime, str, str, str, str, str | None, str, str, int]
"""merged_at, node_a, node_b, from_cluster, into_cluster, customer_id, reason, file, line"""
Conflict = tuple[datetime, str, str, str, str, str, str, int]
"""at, node_a, node_b, customer_a, customer_b, reason, file, line"""


@dataclass(frozen=True)
class Link:
    at: datetime
    line: int
    place: int
    a: str
    b: str
    reason: str


@dataclass
class ReferenceIdentities:
    """The whole identity graph, batch after batch."""

    clusters: dict[str, frozenset[str]] = field(default_factory=dict)
    first_seen: dict[str, datetime] = field(default_factory=dict)

    def apply(
        self, table: str, rows: list[Row], source: str, clock: datetime
    ) -> tuple[list[Merge], list[Conflict]]:
        """One batch: ``rows`` as stored (line ``i + 1``), at ``clock``."""
        sightings, links = _evidence(table, rows, clock)
        return self.apply_links(sightings, links, source)

    def apply_links(
        self, sightings: list[tuple[str, datetime]], links: list[Link], source: str
    ) -> tuple[list[Merge], list[Conflict]]:
        """One batch's evidence: ``type:value`` keys seen alone, and links in any order."""
        for key, at in sightings:
            self._sight(key, at)
        merges: list[Merge] = []
        conflicts: list[Conflict] = []
        for link in sorted(links, key=lambda each: (each.at, each.line, each.place)):
            self._sight(link.a, link.at)
            self._sight(link.b, link.at)
            left, right = self.clusters[link.a], self.clusters[link.b]
            if left == right:
                continue
            customer_a, customer_b = _customer(left), _customer(right)
            where = (link.reason, source, link.line)
            if customer_a and customer_b:
                conflicts.append((link.at, link.a, link.b, customer_a, customer_b, *where))
                continue
            joined = left | right
            for key in joined:
                self.clusters[key] = joined
            into = _cluster_id(joined)
            vanished = _cluster_id(right) if into == _cluster_id(left) else _cluster_id(left)
            merges.append((link.at, link.a, link.b, vanished, into, _customer(joined), *where))
        return merges, conflicts

    def identities(self) -> dict[tuple[str, str], tuple[str, str | None, datetime]]:
        """(type, value) -> (cluster id, customer id, first seen), as the table stores them."""
        return {
            tuple(key.split(":", 1)): (  # type: ignore[misc]
                _cluster_id(cluster),
                _customer(cluster),
                self.first_seen[key],
            )
            for key, cluster in self.clusters.items()
        }

    def _sight(self, key: str, at: datetime) -> None:
        self.clusters.setdefault(key, frozenset([key]))
        self.first_seen[key] = min(at, self.first_seen.get(key, at))


def _customer(cluster: frozenset[str]) -> str | None:
    customers = [
        key.removeprefix("customer_id:") for key in cluster if key.startswith("customer_id:")
    ]
    assert len(customers) <= 1
    return customers[0] if customers else None


def _cluster_id(cluster: frozenset[str]) -> str:
    customer = _customer(cluster)
    return f"customer_id:{customer}" if customer is not None else min(cluster)


def _evidence(
    table: str, rows: list[Row], clock: datetime
) -> tuple[list[tuple[str, datetime]], list[Link]]:
    sightings: list[tuple[str, datetime]] = []
    links: list[Link] = []
    for line, row in enumerate(rows, start=1):
        if table == "customers":
            customer = f"customer_id:{row['customer_id']}"
            at = row.get("created_at") or clock
            sightings.append((customer, at))
            for place, (kind, value) in enumerate(_contacts(row)):
                if value:
                    links.append(
                        Link(
                            at, line, place, customer, f"{kind}:{value}", f"customer record {kind}"
                        )
                    )
            continue
        device, customer_id = row.get("anonymous_id"), row.get("customer_id")
        if device:
            sightings.append((f"anonymous_id:{device}", row["ts"]))
        if device and customer_id:
            links.append(
                Link(
                    row["ts"],
                    line,
                    0,
                    f"anonymous_id:{device}",
                    f"customer_id:{customer_id}",
                    f"{row['event_type']} event",
                )
            )
        subject = f"anonymous_id:{device}" if device else f"customer_id:{customer_id}"
        if row["event_type"] == "identify" and row.get("properties"):
            for place, trait in enumerate(_traits(row["properties"]), start=1):
                kind = trait.split(":", 1)[0]
                links.append(Link(row["ts"], line, place, subject, trait, f"identify event {kind}"))
    return sightings, links


def _contacts(row: Row) -> list[tuple[str, str | None]]:
    phone, email = row.get("phone"), row.get("email")
    return [
        ("phone", normalize_phone(phone) if phone else None),
        ("email", normalize_email(email) if email else None),
        ("wechat_openid", (row.get("wechat_openid") or "").strip() or None),
        ("wechat_unionid", (row.get("wechat_unionid") or "").strip() or None),
    ]


def _traits(properties: dict[str, Any]) -> list[str]:
    """e-mail, phone (as text, normalised), WeChat ids (trimmed), external ids by system."""
    traits = []
    if properties.get("email") and (email := normalize_email(str(properties["email"]))):
        traits.append(f"email:{email}")
    if properties.get("phone") and (phone := normalize_phone(str(properties["phone"]))):
        traits.append(f"phone:{phone}")
    for kind in ("wechat_openid", "wechat_unionid"):
        value = properties.get(kind)
        if isinstance(value, str) and value.strip():
            traits.append(f"{kind}:{value.strip()}")
    external = properties.get("external_ids")
    if isinstance(external, dict):
        for system, value in sorted(external.items()):
            if isinstance(value, str | int) and str(value).strip() and system:
                traits.append(f"external_id:{system}:{str(value).strip()}")
    return traits
