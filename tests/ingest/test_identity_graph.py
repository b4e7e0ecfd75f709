"""Identity resolution: merges, conflicts, deterministic cluster ids and merge history."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.ingest.identity_graph import (
    Conflict,
    IdentityGraph,
    Link,
    LinkOutcome,
    Membership,
    MergeRecord,
    Node,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

LI_MING = Node("customer_id", "C001")
WANG_FANG = Node("customer_id", "C002")
PHONE = Node("phone", "+8613812345678")
EMAIL = Node("email", "li.ming@example.com")
DEVICE_1 = Node("anonymous_id", "dev-1")
DEVICE_2 = Node("anonymous_id", "dev-2")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def link(a: Node, b: Node, minutes: int = 0, reason: str = "identify", line: int = 1) -> Link:
    return Link(a, b, reason=reason, at=at(minutes), source_file="events.csv", source_line=line)


# --- nodes and times --------------------------------------------------------------------


def test_a_node_key_is_kind_colon_value_and_nodes_order_by_kind_then_value() -> None:
    assert PHONE.key == "phone:+8613812345678"
    assert Node.from_key("email:a:b@example.com") == Node("email", "a:b@example.com")
    assert sorted([PHONE, EMAIL, Node("email", "a@example.com")]) == [
        Node("email", "a@example.com"),
        EMAIL,
        PHONE,
    ]


def test_unknown_kinds_and_empty_values_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown node kind 'mobile'"):
        Node("mobile", "+8613812345678")
    with pytest.raises(ValueError, match="empty phone value"):
        Node("phone", "")
    with pytest.raises(ValueError, match="not a node key"):
        Node.from_key("C001")


def test_naive_datetimes_are_refused_with_a_message_that_says_so() -> None:
    naive = datetime(2026, 3, 1, 9, 0)  # naive on purpose
    with pytest.raises(ValueError, match="naive datetime"):
        Link(DEVICE_1, LI_MING, "identify", naive, "events.csv", 1)
    with pytest.raises(ValueError, match="naive datetime"):
        Membership(DEVICE_1, "anonymous_id:dev-1", None, naive)
    with pytest.raises(ValueError, match="naive datetime"):
        IdentityGraph().add_node(LI_MING, naive)


def test_aware_datetimes_in_other_zones_are_stored_as_utc() -> None:
    beijing = datetime(2026, 3, 1, 17, 0, tzinfo=timezone(timedelta(hours=8)))
    made = Link(DEVICE_1, LI_MING, "identify", beijing, "events.csv", 1)
    assert made.at == T0
    assert made.at.tzinfo is UTC


# --- merging ----------------------------------------------------------------------------


def test_an_anonymous_trail_merges_into_the_customer_on_identify() -> None:
    graph = IdentityGraph()
    graph.add_node(LI_MING, at(0))
    assert graph.resolve(DEVICE_1) is None

    assert graph.link(link(DEVICE_1, LI_MING, 5)) is LinkOutcome.MERGED

    assert graph.resolve(DEVICE_1) == "C001"
    assert graph.cluster_id(DEVICE_1) == "customer_id:C001"
    assert graph.merges == [
        MergeRecord(
            merged_at=at(5),
            node_a_key="anonymous_id:dev-1",
            node_b_key="customer_id:C001",
            from_cluster="anonymous_id:dev-1",
            into_cluster="customer_id:C001",
            customer_id="C001",
            reason="identify",
            source_file="events.csv",
            source_line=1,
        )
    ]


def test_devices_sharing_an_email_join_and_resolve_once_the_email_is_identified() -> None:
    graph = IdentityGraph()
    graph.link(link(DEVICE_1, EMAIL, 1, reason="shared_email"))
    graph.link(link(DEVICE_2, EMAIL, 2, reason="shared_email"))
    assert graph.cluster_id(DEVICE_1) == graph.cluster_id(DEVICE_2) == "anonymous_id:dev-1"
    assert graph.resolve(DEVICE_2) is None

    graph.link(link(EMAIL, LI_MING, 3, reason="customer_email"))

    assert graph.resolve(DEVICE_1) == graph.resolve(DEVICE_2) == "C001"
    assert {m.cluster_id for m in graph.memberships()} == {"customer_id:C001"}


def test_a_link_inside_one_cluster_is_already_linked_and_records_no_merge() -> None:
    graph = IdentityGraph()
    graph.link(link(DEVICE_1, EMAIL, 1))
    graph.link(link(DEVICE_2, EMAIL, 2))
    assert graph.link(link(DEVICE_1, DEVICE_2, 3)) is LinkOutcome.ALREADY_LINKED
    assert graph.link(link(DEVICE_1, DEVICE_1, 4)) is LinkOutcome.ALREADY_LINKED
    assert len(graph.merges) == 2


def test_a_phone_shared_by_two_customers_is_a_conflict_and_stays_with_the_first() -> None:
    graph = IdentityGraph()
    assert graph.link(link(PHONE, LI_MING, 1, reason="customer_phone", line=2))
    outcome = graph.link(link(PHONE, WANG_FANG, 2, reason="customer_phone", line=3))

    assert outcome is LinkOutcome.CONFLICT
    assert graph.resolve(PHONE) == "C001"
    assert graph.resolve(WANG_FANG) == "C002"
    assert graph.conflicts == [
        Conflict(
            at=at(2),
            node_a_key="phone:+8613812345678",
            node_b_key="customer_id:C002",
            customer_a="C001",
            customer_b="C002",
            reason="customer_phone",
            source_file="events.csv",
            source_line=3,
        )
    ]
    assert len(graph.merges) == 1


def test_two_customers_are_never_merged_even_through_anonymous_nodes() -> None:
    graph = IdentityGraph()
    graph.link(link(DEVICE_1, LI_MING, 1))
    graph.link(link(DEVICE_2, WANG_FANG, 2))
    assert graph.link(link(DEVICE_1, DEVICE_2, 3)) is LinkOutcome.CONFLICT
    assert graph.link(link(LI_MING, WANG_FANG, 4)) is LinkOutcome.CONFLICT
    assert graph.resolve(DEVICE_1) == "C001"
    assert graph.resolve(DEVICE_2) == "C002"
    assert [(c.customer_a, c.customer_b) for c in graph.conflicts] == [
        ("C001", "C002"),
        ("C001", "C002"),
    ]


def test_first_seen_is_the_earliest_sighting_whatever_the_order() -> None:
    graph = IdentityGraph()
    graph.add_node(LI_MING, at(10))
    graph.add_node(LI_MING, at(20))
    graph.link(link(DEVICE_1, LI_MING, 5))
    seen = {m.node: m.first_seen_at for m in graph.memberships()}
    assert seen == {LI_MING: at(5), DEVICE_1: at(5)}
    assert len(graph) == 2


def test_unknown_nodes_resolve_to_nothing() -> None:
    assert IdentityGraph().resolve(PHONE) is None
    assert IdentityGraph().cluster_id(PHONE) is None


# --- stored state -----------------------------------------------------------------------


def _stored_state() -> list[Membership]:
    graph = IdentityGraph()
    graph.link(link(DEVICE_1, LI_MING, 1))
    graph.link(link(PHONE, LI_MING, 2))
    graph.link(link(DEVICE_2, EMAIL, 3))
    graph.add_node(WANG_FANG, at(4))
    return graph.memberships()


def test_memberships_fed_back_in_have_nothing_changed() -> None:
    stored = _stored_state()
    graph = IdentityGraph.from_memberships(stored)
    assert graph.changed_memberships() == []
    assert graph.memberships() == stored
    assert graph.resolve(PHONE) == "C001"


def test_only_new_nodes_and_nodes_whose_cluster_changed_are_written_back() -> None:
    graph = IdentityGraph.from_memberships(_stored_state())
    graph.link(link(EMAIL, WANG_FANG, 10, reason="customer_email"))
    graph.link(link(Node("wechat_openid", "o-1"), LI_MING, 11, reason="wechat_login"))
    changed = {m.node.key: (m.cluster_id, m.customer_id) for m in graph.changed_memberships()}
    assert changed == {
        "anonymous_id:dev-2": ("customer_id:C002", "C002"),
        "email:li.ming@example.com": ("customer_id:C002", "C002"),
        "wechat_openid:o-1": ("customer_id:C001", "C001"),
    }


def test_an_earlier_sighting_of_a_stored_node_is_written_back() -> None:
    graph = IdentityGraph.from_memberships(_stored_state())
    graph.add_node(WANG_FANG, at(-60))
    assert [(m.node, m.first_seen_at) for m in graph.changed_memberships()] == [
        (WANG_FANG, at(-60))
    ]


def test_stored_cluster_ids_are_recomputed_not_trusted() -> None:
    stale = [
        Membership(DEVICE_2, "old-cluster-7", None, at(0)),
        Membership(EMAIL, "old-cluster-7", None, at(0)),
    ]
    graph = IdentityGraph.from_memberships(stale)
    assert {m.cluster_id for m in graph.changed_memberships()} == {"anonymous_id:dev-2"}


def test_stored_state_with_two_customers_in_a_cluster_or_a_node_twice_is_refused() -> None:
    two_customers = [
        Membership(LI_MING, "x", "C001", at(0)),
        Membership(WANG_FANG, "x", "C001", at(0)),
    ]
    with pytest.raises(ValueError, match="holds two customers"):
        IdentityGraph.from_memberships(two_customers)
    twice = [Membership(PHONE, "x", None, at(0)), Membership(PHONE, "y", None, at(0))]
    with pytest.raises(ValueError, match="more than once"):
        IdentityGraph.from_memberships(twice)


def test_the_same_links_on_the_same_stored_state_give_identical_results() -> None:
    device_3 = Node("anonymous_id", "dev-3")
    links = [
        link(device_3, EMAIL, 10, line=1),
        link(device_3, PHONE, 11, line=2),  # the e-mail's trail becomes Li Ming's
        link(EMAIL, WANG_FANG, 12, line=3),  # so Wang Fang's claim is a conflict
        link(Node("wechat_openid", "o-1"), WANG_FANG, 13, line=4),
    ]

    def run() -> IdentityGraph:
        graph = IdentityGraph.from_memberships(_stored_state())
        for each in links:
            graph.link(each)
        return graph

    first, second = run(), run()
    assert first.memberships() == second.memberships()
    assert first.changed_memberships() == second.changed_memberships()
    assert first.merges == second.merges
    assert first.conflicts == second.conflicts
    assert first.conflicts  # the scenario does exercise a conflict


_HASH_SEED_SCRIPT = textwrap.dedent(
    """
    import json
    from datetime import UTC, datetime
    from perennial.ingest.identity_graph import IdentityGraph, Link, Node

    graph = IdentityGraph()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    kinds = ["anonymous_id", "email", "phone", "customer_id"]
    for i in range(200):
        a = Node(kinds[i % 3], f"v{(i * 7) % 31}")
        b = Node(kinds[(i * 5) % 4], f"v{(i * 11) % 29}")
        graph.link(Link(a, b, "r", at, "f.csv", i))
    print(json.dumps({
        "memberships": [[m.node.key, m.cluster_id, m.customer_id] for m in graph.memberships()],
        "merges": [[m.from_cluster, m.into_cluster, m.source_line] for m in graph.merges],
        "conflicts": [[c.customer_a, c.customer_b, c.source_line] for c in graph.conflicts],
    }))
    """
)


def test_results_do_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", _HASH_SEED_SCRIPT],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0]["conflicts"]


# --- history ----------------------------------------------------------------------------


def test_merge_history_explains_why_a_device_is_the_customers() -> None:
    graph = IdentityGraph()
    graph.link(link(DEVICE_1, EMAIL, 1, reason="newsletter_signup", line=10))
    graph.link(link(DEVICE_2, Node("anonymous_id", "dev-9"), 2, reason="same_session", line=11))
    graph.link(link(EMAIL, LI_MING, 3, reason="customer_email", line=12))
    graph.link(link(PHONE, LI_MING, 4, reason="customer_phone", line=13))

    path = graph.explain(DEVICE_1)

    assert [(r.node_a_key, r.node_b_key, r.reason, r.source_line) for r in path] == [
        ("anonymous_id:dev-1", "email:li.ming@example.com", "newsletter_signup", 10),
        ("email:li.ming@example.com", "customer_id:C001", "customer_email", 12),
    ]
    assert path[-1].into_cluster == "customer_id:C001"
    assert graph.explain(LI_MING) == []
    assert graph.explain(DEVICE_2) == []  # not anyone's
    assert graph.explain(Node("phone", "+10000000000")) == []


def test_history_crosses_clusters_that_were_already_stored_together() -> None:
    graph = IdentityGraph.from_memberships(_stored_state())  # dev-2 and the email, anonymous
    graph.link(link(EMAIL, WANG_FANG, 10, reason="customer_email", line=99))
    assert [r.source_line for r in graph.explain(DEVICE_2)] == [99]
    assert graph.explain(DEVICE_1) == []  # tied to Li Ming before this batch


def test_each_merge_names_the_cluster_that_disappeared_and_the_one_it_joined() -> None:
    graph = IdentityGraph()
    graph.link(link(Node("anonymous_id", "z"), Node("email", "b@x.cn"), 1))
    graph.link(link(Node("anonymous_id", "a"), Node("phone", "+8613812345678"), 2))
    graph.link(link(Node("email", "b@x.cn"), Node("phone", "+8613812345678"), 3))
    assert [(r.from_cluster, r.into_cluster) for r in graph.merges] == [
        ("email:b@x.cn", "anonymous_id:z"),
        ("phone:+8613812345678", "anonymous_id:a"),
        ("anonymous_id:z", "anonymous_id:a"),
    ]


# --- properties against a naive reference -----------------------------------------------

_POOL = [
    *(Node("customer_id", f"c{i}") for i in range(4)),
    *(Node("anonymous_id", f"d{i}") for i in range(6)),
    *(Node("phone", f"+86138000000{i:02d}") for i in range(4)),
    *(Node("email", f"u{i}@example.com") for i in range(4)),
    Node("wechat_unionid", "u-1"),
]
_ANONYMOUS_POOL = [node for node in _POOL if node.kind != "customer_id"]


def _links(pool: list[Node]) -> st.SearchStrategy[list[Link]]:
    pair = st.tuples(st.sampled_from(pool), st.sampled_from(pool), st.integers(0, 1000))
    return st.lists(pair, max_size=30).map(
        lambda pairs: [link(a, b, minutes, line=i) for i, (a, b, minutes) in enumerate(pairs)]
    )


def _reference(links: list[Link]) -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """Connected components with plain sets, applying the no-two-customers rule in order."""
    cluster_of: dict[str, frozenset[str]] = {}

    def customers(cluster: frozenset[str]) -> list[str]:
        return [key for key in cluster if key.startswith("customer_id:")]

    def cluster_id(cluster: frozenset[str]) -> str:
        return (customers(cluster) or [min(cluster)])[0]

    outcomes: list[str] = []
    merges: list[tuple[str, str]] = []
    for each in links:
        a, b = each.a.key, each.b.key
        cluster_of.setdefault(a, frozenset([a]))
        cluster_of.setdefault(b, frozenset([b]))
        ca, cb = cluster_of[a], cluster_of[b]
        if ca == cb:
            outcomes.append("already_linked")
        elif customers(ca) and customers(cb):
            outcomes.append("conflict")
        else:
            joined = ca | cb
            for key in joined:
                cluster_of[key] = joined
            into = cluster_id(joined)
            ids = {cluster_id(ca), cluster_id(cb)}
            assert into in ids
            merges.append(((ids - {into}).pop(), into))
            outcomes.append("merged")
    return outcomes, merges, {key: cluster_id(c) for key, c in cluster_of.items()}


@settings(max_examples=300, deadline=None)
@given(_links(_POOL))
def test_clusters_match_a_naive_connected_components_reference(links: list[Link]) -> None:
    graph = IdentityGraph()
    outcomes = [str(graph.link(each)) for each in links]
    expected_outcomes, expected_merges, expected_ids = _reference(links)

    assert outcomes == expected_outcomes
    assert [(r.from_cluster, r.into_cluster) for r in graph.merges] == expected_merges
    assert {m.node.key: m.cluster_id for m in graph.memberships()} == expected_ids
    assert len(graph.conflicts) == outcomes.count("conflict")
    for membership in graph.memberships():
        customer = membership.cluster_id.removeprefix("customer_id:")
        has_customer = membership.cluster_id.startswith("customer_id:")
        assert membership.customer_id == (customer if has_customer else None)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cluster_ids_do_not_depend_on_union_order_without_customers(data: st.DataObject) -> None:
    links = data.draw(_links(_ANONYMOUS_POOL))
    shuffled = data.draw(st.permutations(links))
    in_order, reordered = IdentityGraph(), IdentityGraph()
    for each in links:
        in_order.link(each)
    for each in shuffled:
        reordered.link(each)
    assert in_order.memberships() == reordered.memberships()


@settings(max_examples=200, deadline=None)
@given(_links(_POOL), st.integers(0, 30))
def test_stopping_storing_and_resuming_gives_the_same_result(links: list[Link], cut: int) -> None:
    whole = IdentityGraph()
    for each in links:
        whole.link(each)

    before = IdentityGraph()
    for each in links[:cut]:
        before.link(each)
    resumed = IdentityGraph.from_memberships(before.memberships())
    assert resumed.changed_memberships() == []
    for each in links[cut:]:
        resumed.link(each)

    assert resumed.memberships() == whole.memberships()
    assert before.merges + resumed.merges == whole.merges
    assert before.conflicts + resumed.conflicts == whole.conflicts
    written_back = set(whole.memberships()) - set(before.memberships())
    assert set(resumed.changed_memberships()) == written_back
