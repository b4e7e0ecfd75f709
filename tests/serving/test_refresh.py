"""Refreshing the serving store: what it holds, atomic publication, and clear refusals."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.ingest.identity_resolution import IDENTITIES_TABLE
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.lifecycle.stage_model import load_stage_model
from perennial.serving import (
    ServingRefreshError,
    ServingStore,
    ServingUnavailableError,
    board_tables,
    refresh_serving,
)
from perennial.serving.board import load_board
from perennial.serving.customers import customer_record, document_codec, timeline_rows
from perennial.store.warehouse import Warehouse
from tests.serving.demo_store import TRICKY_ID, DemoStore


def _table(demo: DemoStore, name: str) -> pa.Table:
    snapshot = Warehouse(demo.settings.warehouse).snapshot()
    return pa.concat_tables(pq.read_table(path) for path in snapshot.paths(name))


def _meta(path: Path, key: str) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


@pytest.fixture
def own_settings(demo: DemoStore, tmp_path: Path) -> Settings:
    """The demo's warehouse with a serving store of this test's own."""
    return demo.settings.model_copy(update={"serving_path": tmp_path / "serving" / "store.db"})


def test_one_row_per_profile_with_its_document_and_contact_kept_apart(demo: DemoStore) -> None:
    profiles = _table(demo, PROFILES_TABLE)
    customers = {row["customer_id"]: row for row in _table(demo, "customers").to_pylist()}
    store = ServingStore(demo.settings.serving_database)
    connection = store.connection()

    assert demo.summary.customers == profiles.num_rows
    stored = connection.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert stored == profiles.num_rows
    with_phone = next(c for c in customers.values() if c["phone"] and c["email"])
    record = customer_record(connection, with_phone["customer_id"], document_codec(connection))
    assert record is not None
    assert (record.phone, record.email) == (with_phone["phone"], with_phone["email"])
    assert with_phone["phone"].encode() not in record.document
    assert with_phone["email"].encode() not in record.document
    document = orjson.loads(record.document)
    profile = next(r for r in profiles.to_pylist() if r["customer_id"] == record.customer_id)
    assert document["stage"]["key"] == profile["stage"]
    assert document["rfm"]["code"] == profile["rfm_code"]
    assert document["features"]["frequency_orders"] == profile["frequency_orders"]
    assert document["features"]["monetary_total"] == pytest.approx(profile["monetary_total"])
    assert document["name"] == with_phone["name"]
    store.close()


def test_identities_of_each_customer_are_all_there(demo: DemoStore) -> None:
    identities = _table(demo, IDENTITIES_TABLE).to_pylist()
    expected: Counter[str] = Counter(
        row["customer_id"]
        for row in identities
        if row["customer_id"] and row["identity_type"] != "customer_id"
    )
    store = ServingStore(demo.settings.serving_database)
    connection = store.connection()
    codec = document_codec(connection)
    for customer_id, count in expected.most_common(20):
        record = customer_record(connection, customer_id, codec)
        assert record is not None
        assert len(orjson.loads(record.identities)) == count
    store.close()


def test_the_timeline_holds_every_order_and_event_of_a_customer_once(demo: DemoStore) -> None:
    orders = Counter(row["customer_id"] for row in _table(demo, "orders").to_pylist())
    anonymous = {
        row["identity_value"]: row["customer_id"]
        for row in _table(demo, IDENTITIES_TABLE).to_pylist()
        if row["identity_type"] == "anonymous_id" and row["customer_id"]
    }
    events: Counter[str] = Counter()
    linked_only = 0
    for row in _table(demo, "events").to_pylist():
        owner = row["customer_id"] or anonymous.get(row["anonymous_id"])
        if owner:
            events[owner] += 1
            linked_only += row["customer_id"] is None
    store = ServingStore(demo.settings.serving_database)
    connection = store.connection()
    known = [row[0] for row in connection.execute("SELECT customer_id FROM customers")]

    stored = dict(connection.execute("SELECT customer_id, count(*) FROM timeline GROUP BY 1"))
    assert sum(stored.values()) == demo.summary.timeline_items
    for customer_id in known:
        assert stored.get(customer_id, 0) == orders[customer_id] + events[customer_id]
    assert linked_only > 0  # anonymous browsing of a customer, linked by the identity graph
    store.close()


def test_timeline_items_that_carry_a_phone_or_email_are_flagged(demo: DemoStore) -> None:
    store = ServingStore(demo.settings.serving_database)
    connection = store.connection()
    flagged = connection.execute("SELECT body, contact FROM timeline").fetchall()
    for body, contact in flagged:
        properties = orjson.loads(body).get("properties") or {}
        assert bool(contact) == ("phone" in properties or "email" in properties)
    assert any(contact for _, contact in flagged)
    store.close()


def test_the_customer_with_an_awkward_id_is_served(demo: DemoStore) -> None:
    store = ServingStore(demo.settings.serving_database)
    connection = store.connection()
    record = customer_record(connection, TRICKY_ID, document_codec(connection))
    assert record is not None
    rows = timeline_rows(connection, TRICKY_ID, before=None, limit=10)
    assert [orjson.loads(row.body)["id"] for row in rows] == ["T2", "T1"]
    assert orjson.loads(rows[0].body)["amount"] == "120.5"
    store.close()


def test_a_reader_sees_the_old_or_the_new_store_never_an_error_during_refreshes(
    demo: DemoStore, own_settings: Settings
) -> None:
    first = refresh_serving(own_settings, demo.model)
    store = ServingStore(first.path)
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                reading = store.reading()
                build = reading.connection.execute("SELECT value FROM meta WHERE key = 'build_id'")
                seen.add(build.fetchone()[0])
                codec = store.cached("documents", document_codec, reading)
                record = customer_record(reading.connection, "C0000001", codec)
                assert record is not None and b'"customer_id":"C0000001"' in record.document
                assert store.cached("board", load_board, reading).model == "seed000"
            except BaseException as error:
                errors.append(error)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    builds = {_meta(first.path, "build_id")}
    for _ in range(3):
        refresh_serving(own_settings, demo.model)
        builds.add(_meta(first.path, "build_id"))
    stop.set()
    for reader in readers:
        reader.join()
    store.close()

    assert errors == []
    assert len(builds) == 4
    assert seen <= builds and len(seen) >= 2
    assert list(first.path.parent.glob("*.tmp")) == []


def test_a_reader_reopens_when_the_file_is_replaced(
    demo: DemoStore, own_settings: Settings
) -> None:
    path = refresh_serving(own_settings, demo.model).path
    store = ServingStore(path)
    before = store.reading()
    assert store.reading() is before

    refresh_serving(own_settings, demo.model)

    after = store.reading()
    assert after.connection is not before.connection and after.identity != before.identity
    with pytest.raises(sqlite3.ProgrammingError):  # this thread's old connection is closed
        before.connection.execute("SELECT 1")
    assert after.connection.execute("SELECT value FROM meta WHERE key='build_id'").fetchone()[
        0
    ] == _meta(path, "build_id")
    store.close()


def test_a_failed_refresh_leaves_the_published_store_untouched(
    demo: DemoStore, own_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = refresh_serving(own_settings, demo.model).path
    build = _meta(path, "build_id")

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(board_tables, "write_rfm", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        refresh_serving(own_settings, demo.model)

    assert _meta(path, "build_id") == build
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_stale_temporary_files_of_a_crashed_refresh_are_removed(
    demo: DemoStore, own_settings: Settings
) -> None:
    folder = own_settings.serving_database.parent
    folder.mkdir(parents=True)
    stale = folder / f".{own_settings.serving_database.name}.deadbeef.tmp"
    fresh = folder / f".{own_settings.serving_database.name}.cafebabe.tmp"
    stale.write_bytes(b"half a store")
    fresh.write_bytes(b"another refresh, running")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    refresh_serving(own_settings, demo.model)
    assert not stale.exists() and fresh.exists()


def test_refreshing_without_profiles_says_to_compute_them(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(ServingRefreshError, match="run `perennial lifecycle compute` first"):
        refresh_serving(settings, load_stage_model(resolve_model_path("seed000")))
    assert not settings.serving_database.exists()


def test_refreshing_with_another_model_than_the_profiles_is_refused(
    own_settings: Settings,
) -> None:
    with pytest.raises(ServingRefreshError) as caught:
        refresh_serving(own_settings, load_stage_model(resolve_model_path("seed002")))
    assert "'churned'" in str(caught.value) and "seed002" in str(caught.value)
    assert not own_settings.serving_database.exists()


def test_a_missing_foreign_or_outdated_store_is_unavailable_with_the_remedy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "serving.db"
    with pytest.raises(ServingUnavailableError, match="perennial serving refresh"):
        ServingStore(path).connection()
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ServingUnavailableError, match="not a serving store"):
        ServingStore(path).connection()
    path.unlink()
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO meta VALUES ('format', '0')")
    with pytest.raises(ServingUnavailableError, match="another version"):
        ServingStore(path).connection()
