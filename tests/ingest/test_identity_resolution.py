"""Identity merge through ingest: anonymous trails join customers; known customers never merge."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.ingest import identity_union_find
from perennial.ingest.identity_lookup import (
    UnknownIdentityError,
    explain_identity,
    parse_identity,
)
from perennial.ingest.identity_resolution import (
    _CONFLICTS_SCHEMA,
    _MERGES_SCHEMA,
    CONFLICTS_TABLE,
    IDENTITIES_SCHEMA,
    IDENTITIES_TABLE,
    MERGES_TABLE,
)
from perennial.ingest.pipeline import ingest_file, ingest_records
from perennial.ingest.records import timestamp_text
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import write_text
from tests.ingest.identity_reference import ReferenceIdentities


def _table(
    settings: Settings, table: str, columns: str, where: str = "true"
) -> list[tuple[object, ...]]:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    return duckdb.execute(
        f"SELECT {columns} FROM read_parquet(?) WHERE {where} ORDER BY ALL",
        [paths],
    ).fetchall()


def _customers(tmp_path: Path, *rows: str) -> Path:
    return write_text(
        tmp_path / "customers.csv", "customer_id,created_at,phone,email\n" + "\n".join(rows) + "\n"
    )


def test_phones_and_emails_are_normalised_before_they_are_stored(
    settings: Settings, tmp_path: Path
) -> None:
    source = _customers(tmp_path, "C1,2025-01-01T00:00:00Z,+86 138-1234-5678, Li.Ming@Example.COM ")
    ingest_file(source, settings, table="customers", now=NOW)
    assert _table(settings, "customers", "phone, email") == [
        ("+8613812345678", "li.ming@example.com")
    ]
    assert ("phone", "+8613812345678", "C1") in _table(
        settings, "identities", "identity_type, identity_value, customer_id"
    )


def test_an_identify_event_merges_an_anonymous_trail_into_the_customer(
    settings: Settings, tmp_path: Path
) -> None:
    ingest_file(
        _customers(tmp_path, "C1,2025-01-01T00:00:00Z,13812345678,li@example.com"),
        settings,
        table="customers",
        now=NOW,
    )
    events = write_text(
        tmp_path / "events.jsonl",
        '{"event_id":"E1","anonymous_id":"dev-1","event_type":"page_view","ts":"2025-02-01T00:00:00Z"}\n'
        '{"event_id":"E2","anonymous_id":"dev-2","event_type":"page_view","ts":"2025-02-01T00:00:00Z"}\n'
        '{"event_id":"E3","anonymous_id":"dev-1","customer_id":"C1","event_type":"identify",'
        '"ts":"2025-02-02T00:00:00Z"}\n'
        '{"event_id":"E4","anonymous_id":"dev-2","event_type":"identify",'
        '"ts":"2025-02-03T00:00:00Z","properties":{"email":"LI@example.com"}}\n',
    )
    report = ingest_file(events, settings, table="events", now=NOW)

    assert report.identity_merges == 2
    resolved = _table(
        settings, "identities", "identity_value, customer_id", "identity_type = 'anonymous_id'"
    )
    assert resolved == [("dev-1", "C1"), ("dev-2", "C1")]
    reasons = _table(settings, "identity_merges", "node_a, reason")
    assert ("anonymous_id:dev-2", "identify event email") in reasons


def test_a_phone_shared_by_two_known_customers_is_a_reported_conflict_not_a_merge(
    settings: Settings, tmp_path: Path
) -> None:
    report = ingest_file(
        _customers(
            tmp_path,
            "C1,2025-01-01T00:00:00Z,13812345678,",
            "C2,2025-01-02T00:00:00Z,138 1234 5678,",
        ),
        settings,
        table="customers",
        now=NOW,
    )
    assert (report.accepted, report.identity_conflicts) == (2, 1)
    [(customer_a, customer_b, node_b)] = _table(
        settings, "identity_conflicts", "customer_a, customer_b, node_b"
    )
    assert {customer_a, customer_b} == {"C1", "C2"}
    assert node_b == "phone:+8613812345678"
    owners = _table(settings, "identities", "customer_id", "identity_type = 'phone'")
    assert owners == [("C1",)]


def test_a_later_batch_extends_a_stored_cluster_without_losing_its_members(
    settings: Settings, tmp_path: Path
) -> None:
    ingest_file(
        _customers(tmp_path, "C1,2025-01-01T00:00:00Z,13812345678,"),
        settings,
        table="customers",
        now=NOW,
    )
    events = write_text(
        tmp_path / "events.jsonl",
        '{"event_id":"E1","anonymous_id":"dev-1","event_type":"identify",'
        '"ts":"2025-02-01T00:00:00Z","properties":{"phone":"13812345678"}}\n',
    )
    ingest_file(events, settings, table="events", now=NOW)
    members = _table(settings, "identities", "identity_type, customer_id")
    assert members == [("anonymous_id", "C1"), ("customer_id", "C1"), ("phone", "C1")]


def test_an_identifier_is_explained_by_its_cluster_and_the_evidence_that_built_it(
    settings: Settings, tmp_path: Path
) -> None:
    customers = _customers(
        tmp_path, "C1,2025-01-01T00:00:00Z,13812345678,", "C2,2025-01-02T00:00:00Z,13812345678,"
    )
    ingest_file(customers, settings, table="customers", now=NOW)
    events = write_text(
        tmp_path / "events.jsonl",
        '{"event_id":"E1","anonymous_id":"dev-1","customer_id":"C1","event_type":"identify",'
        '"ts":"2025-02-01T00:00:00Z"}\n',
    )
    ingest_file(events, settings, table="events", now=NOW)

    explanation = explain_identity(settings, parse_identity("anonymous_id:dev-1"))
    by_phone = explain_identity(settings, parse_identity("phone:+86 138-1234-5678"))

    assert explanation.customer_id == "C1"
    assert [m[0] for m in explanation.members] == ["customer_id", "phone", "anonymous_id"]
    assert [(m["reason"], m["source_line"]) for m in explanation.merges] == [
        ("customer record phone", 2),
        ("identify event", 1),
    ]
    assert by_phone.cluster_id == "customer_id:C1"
    assert len(by_phone.conflicts) == 1
    with pytest.raises(UnknownIdentityError, match="not a known identifier"):
        explain_identity(settings, parse_identity("email:nobody@example.com"))
    with pytest.raises(UnknownIdentityError, match="TYPE:VALUE"):
        parse_identity("device-7")


def test_written_identity_tables_have_exactly_their_declared_schemas(
    settings: Settings, tmp_path: Path
) -> None:
    customers = _customers(
        tmp_path, "C1,2025-01-01T00:00:00Z,13812345678,", "C2,,13812345678,li@example.com"
    )
    ingest_file(customers, settings, table="customers", now=NOW)
    events = write_text(
        tmp_path / "events.jsonl",
        '{"event_id":"E1","anonymous_id":"dev-1","customer_id":"C2","event_type":"login",'
        '"ts":"2025-02-01T00:00:00Z"}\n',
    )
    ingest_file(events, settings, table="events", now=NOW)
    snapshot = Warehouse(settings.warehouse).snapshot()
    declared = {
        IDENTITIES_TABLE: IDENTITIES_SCHEMA,
        MERGES_TABLE: _MERGES_SCHEMA,
        CONFLICTS_TABLE: _CONFLICTS_SCHEMA,
    }
    for table, schema in declared.items():
        paths = snapshot.paths(table)
        assert paths, table
        for path in paths:  # DuckDB marks columns it knows hold no null as required
            written = pq.read_schema(path)
            assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in schema]


# --- against a plain-Python reference, on random evidence ---------------------------------

_TIMES = [datetime(2025, 1, day, 8, tzinfo=UTC) for day in (1, 2, 3)]  # few: ties by line
_PHONES = ["13800000001", "+86 138 0000 0001", "13800000002", "0086 138-0000-0003"]
_EMAILS = ["li@example.com", " LI@Example.com ", "wang@example.com", "zhao@example.cn"]
_CUSTOMER_IDS = [f"C{n}" for n in range(6)]
_DEVICES = [f"dev-{n}" for n in range(5)]


def _maybe(*values: object) -> st.SearchStrategy[Any]:
    return st.sampled_from([None, *values])


_TRAITS = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from([*_EMAILS, "not-an-email", 0, True, ""]),
        "phone": st.sampled_from([*_PHONES, 13800000002, "138abcd5678", ""]),
        "wechat_openid": st.sampled_from(["o-1", " o-2 ", "", 7]),
        "wechat_unionid": st.sampled_from(["u-1"]),
        "external_ids": st.dictionaries(
            st.sampled_from(["crm", "erp", ""]), st.sampled_from(["C-1", 7, " ", True]), max_size=2
        ),
        "page": st.just("/"),
    },
)


def _event(people: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "anonymous_id": _maybe(*_DEVICES, *_DEVICES),
            "customer_id": st.sampled_from([None, None, *people]),
            "event_type": st.sampled_from(["identify", "identify", "login", "page_view"]),
            "ts": st.sampled_from(_TIMES),
            "properties": st.one_of(st.none(), _TRAITS, _TRAITS),
        }
    ).filter(lambda event: event["anonymous_id"] or event["customer_id"])


def _customer(customer_id: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "customer_id": st.just(customer_id),
            "created_at": _maybe(*_TIMES),
            "phone": _maybe(*_PHONES),
            "email": _maybe(*_EMAILS),
            "wechat_openid": _maybe("o-1", "o-2"),
            "wechat_unionid": _maybe("u-1"),
        }
    )


def _batches(data: st.DataObject) -> list[tuple[str, list[dict[str, Any]]]]:
    """One to four batches of customers (each id once overall) or events, among none, one
    or several known customers (no conflicts possible with fewer than two)."""
    people = _CUSTOMER_IDS[: data.draw(st.sampled_from([0, 1, 2, len(_CUSTOMER_IDS)]))]
    unused = list(people)
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for _ in range(data.draw(st.integers(1, 4))):
        if unused and data.draw(st.booleans()):
            chosen = data.draw(
                st.lists(st.sampled_from(unused), min_size=1, max_size=4, unique=True)
            )
            unused = [c for c in unused if c not in chosen]
            batches.append(("customers", [data.draw(_customer(c)) for c in chosen]))
        else:
            events = st.lists(_event(people), min_size=1, max_size=12)
            batches.append(("events", data.draw(events)))
    return batches


def _as_record(row: dict[str, Any], table: str, number: int) -> dict[str, Any]:
    record = {k: timestamp_text(v) if isinstance(v, datetime) else v for k, v in row.items()}
    if table == "events":
        record["event_id"] = f"E{number}"
    return record


@pytest.mark.slow
@settings_(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([1, 5, identity_union_find.CHUNK_SIZE]))
def test_resolution_matches_a_plain_python_reference_on_random_evidence(
    data: st.DataObject, chunk_size: int
) -> None:
    reference = ReferenceIdentities()
    expected_merges, expected_conflicts = (
        Counter[tuple[object, ...]](),
        Counter[tuple[object, ...]](),
    )
    with (
        tempfile.TemporaryDirectory() as home,
        patch.object(identity_union_find, "CHUNK_SIZE", chunk_size),
    ):
        store = Settings(home=Path(home))
        for number, (table, rows) in enumerate(_batches(data)):
            source = f"batch-{number}.jsonl"
            records = [_as_record(row, table, number * 100 + i) for i, row in enumerate(rows)]
            report = ingest_records(records, store, table=table, source=source, now=NOW)
            assert (report.accepted, report.quarantined) == (len(rows), 0)
            merges, conflicts = reference.apply(table, rows, source, NOW)
            assert (report.identity_merges, report.identity_conflicts) == (
                len(merges),
                len(conflicts),
            )
            expected_merges.update(merges)
            expected_conflicts.update(conflicts)

        stored = _rows(store, "identities", "*")
        assert {(t, v): (c, u, s) for t, v, c, u, s in stored} == reference.identities()
        assert len(stored) == len(reference.identities())
        assert Counter(_rows(store, "identity_merges", _EVIDENCE)) == expected_merges
        assert Counter(_rows(store, "identity_conflicts", _EVIDENCE)) == expected_conflicts


_EVIDENCE = "* EXCLUDE (batch_id)"


def _rows(settings: Settings, table: str, columns: str) -> list[tuple[object, ...]]:
    """Every row of ``table`` (none when it has no file yet)."""
    if not Warehouse(settings.warehouse).snapshot().paths(table):
        return []
    return _table(settings, table, columns)
