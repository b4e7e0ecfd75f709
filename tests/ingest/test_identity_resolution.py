"""Identity merge through ingest: anonymous trails join customers; known customers never merge."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from perennial.config import Settings
from perennial.ingest.identity_lookup import (
    UnknownIdentityError,
    explain_identity,
    parse_identity,
)
from perennial.ingest.pipeline import ingest_file
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import write_text


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
