"""Connected components of a large graph, in DuckDB: bounded memory, spilling to disk.

Identity resolution splits a batch's graph into independent pieces before it
applies links in order, so that each piece fits in memory on its own. No
graph library is installed and Python dictionaries over millions of nodes are
what made the old resolution run out of memory, so components are found with
the standard min-label propagation, in SQL:

* every node starts labelled with its own number;
* each round, every label points to its smallest neighbour (or itself), these
  pointers are followed to their ends (pointer jumping), every node takes the
  end of its label's chain, and edges are rewritten between the new labels,
  dropping those inside one label;
* when no edge is left, nodes sharing a label form one component.

Labels only decrease, and an edge between labels ``u < v`` always moves ``v``, so
this terminates; stars and trees of the kind identities form need two or three
rounds. Each round is a few joins over the remaining edges.
"""

from __future__ import annotations

import duckdb

__all__ = ["label_components"]

_EDGES = "identity_cc_edges"
_HOOKS = "identity_cc_hooks"
_HALF = "identity_cc_half"


def label_components(con: duckdb.DuckDBPyConnection, edges: str, labels: str) -> int:
    """Write ``labels(node, label)``: each node of ``edges(u, v)`` and the smallest node of
    its component. Returns the number of rounds.

    ``edges`` holds distinct BIGINT pairs with ``u < v``; a node in no edge is a
    component of its own and gets no row. Each round's pointers are composed into
    ``labels`` as it goes, so a graph of small components (the usual case) is done
    after one round and never copies its node list twice.
    """
    con.execute(
        f"DROP TABLE IF EXISTS {labels}; "  # noqa: S608 (table names are the caller's constants)
        f"CREATE OR REPLACE TEMP TABLE {_EDGES} AS SELECT u, v FROM {edges}"
    )
    rounds = 0
    while _count(con, _EDGES):
        rounds += 1
        _hook(con)
        hooks = _HOOKS
        if rounds == 1:  # the first pointers are the labels: no copy
            con.execute(f"ALTER TABLE {_HOOKS} RENAME TO {labels}")
            hooks = labels
        else:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {labels} AS
                SELECT l.node, coalesce(h.label, l.label) AS label
                FROM {labels} l LEFT JOIN {_HOOKS} h ON h.node = l.label
                """  # noqa: S608 (table names are the caller's constants)
            )
        _relabel_edges(con, hooks)
    if rounds == 0:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {labels} (node BIGINT, label BIGINT)")
    con.execute(f"DROP TABLE IF EXISTS {_EDGES}; DROP TABLE IF EXISTS {_HOOKS}")
    return rounds


def _relabel_edges(con: duckdb.DuckDBPyConnection, hooks: str) -> None:
    """Rewrite the edges between the new labels, without those inside one label. One join
    per statement: DuckDB spills each on its own under a small memory limit."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_HALF} AS
        SELECT h.label AS u, e.v FROM {_EDGES} e JOIN {hooks} h ON h.node = e.u;
        CREATE OR REPLACE TEMP TABLE {_EDGES} AS
        SELECT DISTINCT least(u, label) AS u, greatest(u, label) AS v
        FROM {_HALF} e JOIN {hooks} h ON h.node = e.v
        WHERE u <> label;
        DROP TABLE {_HALF};
        """  # noqa: S608 (table names are the caller's constants)
    )


def _hook(con: duckdb.DuckDBPyConnection) -> None:
    """``hooks(node, label)``: each labelled node's smallest neighbour (itself if smaller),
    followed to the end of the chain (pointer jumping: log of its length in joins), so a
    long path of labels collapses in one round instead of shrinking by one node."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_HOOKS} AS
        SELECT u AS node, least(u, min(v)) AS label FROM (
            SELECT u, v FROM {_EDGES} UNION ALL SELECT v, u FROM {_EDGES})
        GROUP BY u
        """  # noqa: S608 (fixed table names)
    )
    total = _label_sum(con)
    while True:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_HOOKS} AS
            SELECT h.node, coalesce(j.label, h.label) AS label
            FROM {_HOOKS} h LEFT JOIN {_HOOKS} j ON j.node = h.label
            """  # noqa: S608 (fixed table names)
        )
        jumped = _label_sum(con)
        if jumped == total:  # labels only decrease: an equal sum means none moved
            return
        total = jumped


def _label_sum(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute(f"SELECT sum(label)::HUGEINT FROM {_HOOKS}").fetchone()  # noqa: S608
    return int(found[0]) if found and found[0] is not None else 0


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    found = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(found[0]) if found else 0
