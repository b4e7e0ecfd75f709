"""The segment frame's rows: every customer with a record, a profile or a prediction.

The three sources need not agree: a customer registered after the last profile run has
a record and no profile; a profile or a prediction can outlive its record. Each must
still be one row, with the fields it lacks null, whichever fields an expression reads.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from perennial.features.history import anonymous_links
from perennial.lifecycle.profiles import PROFILES_TABLE, store_profiles
from perennial.models.predictions import PREDICTIONS_TABLE, store_predictions
from perennial.schema.tables import TABLES
from perennial.segments.frame import _cached_links
from perennial.segments.service import SegmentService
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.segments.conftest import CLOCK, SegmentStore

RECORD_ONLY = "C0000001"
PROFILE_ONLY = "GHOST-PROFILE"
PREDICTION_ONLY = "GHOST-PREDICTION"


def _disagreeing_store(segment_store: SegmentStore, tmp_path: Path) -> SegmentService:
    """A copy of the segment store where the three sources hold different customers."""
    warehouse_path = tmp_path / "warehouse"
    shutil.copytree(segment_store.warehouse, warehouse_path)
    warehouse = Warehouse(warehouse_path)
    snapshot = warehouse.snapshot()
    profiles = pq.read_table(snapshot.paths(PROFILES_TABLE))
    kept = profiles.filter(pc.not_equal(profiles.column("customer_id"), RECORD_ONLY))
    store_profiles(warehouse, _plus_one(kept, PROFILE_ONLY), "profiles-without-one")
    predictions = pq.read_table(snapshot.paths(PREDICTIONS_TABLE))
    store_predictions(warehouse, _plus_one(predictions, PREDICTION_ONLY), "predictions-plus-one")
    settings = segment_store.settings(tmp_path / "home", warehouse_path=warehouse_path)
    return SegmentService.migrated(settings)


def _plus_one(table: pa.Table, customer_id: str) -> pa.Table:
    """``table`` and a copy of its first row for ``customer_id``."""
    ghost = {**table.slice(0, 1).to_pylist()[0], "customer_id": customer_id}
    return pa.concat_tables([table, pa.Table.from_pylist([ghost], schema=table.schema)])


def _members(service: SegmentService, text: str) -> set[str]:
    return set(service.preview(text, sample=100_000).sample)


def test_every_source_contributes_its_customers_once(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    original = SegmentService.migrated(segment_store.settings(tmp_path / "original"))
    service = _disagreeing_store(segment_store, tmp_path)
    everyone = service.preview("registered_at is null or registered_at is not null", sample=0)
    with_records = service.preview("registered_at is not null", sample=0)

    assert everyone.count == everyone.customers == original.preview("stage is null").customers + 2
    assert with_records.count == original.preview("registered_at is not null").count
    assert _members(service, "registered_at is null") == {
        PROFILE_ONLY,
        PREDICTION_ONLY,
        *_members(original, "registered_at is null"),
    }


def test_fields_a_source_lacks_are_null_whichever_fields_are_read(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    service = _disagreeing_store(segment_store, tmp_path)

    no_stage = _members(service, "stage is null")
    assert RECORD_ONLY in no_stage and PREDICTION_ONLY in no_stage
    assert PROFILE_ONLY not in no_stage
    no_churn = _members(service, "churn_probability is null and stage is not null")
    assert PROFILE_ONLY in no_churn and RECORD_ONLY not in no_churn
    all_three = _members(service, "stage is null and registered_at is not null")
    assert all_three == {RECORD_ONLY}


def test_links_merged_from_appended_event_files_equal_links_read_whole(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    """The live path keeps the visitor links of the files it has seen and reads only the
    appended ones: the result must be the links of all the files, ties included."""
    warehouse_path = tmp_path / "warehouse"
    shutil.copytree(segment_store.warehouse, warehouse_path)
    warehouse = Warehouse(warehouse_path)
    settings = segment_store.settings(tmp_path / "home", warehouse_path=warehouse_path)
    horizon = CLOCK + timedelta(days=3650)
    key = object()
    with open_backend(settings) as backend:
        before = _cached_links(backend, warehouse.snapshot(), horizon, key)
        visitor = before.column("linked_anonymous_id")[0].as_py()
        known_at = before.column("linked_at")[0].as_py()
        _append_events(
            warehouse,
            [
                # an earlier sighting moves an existing visitor to another customer
                (visitor, "C-EARLIER", known_at - timedelta(days=1)),
                # a new visitor seen with two customers at once: the smaller id wins
                ("V-NEW", "C-B", known_at),
                ("V-NEW", "C-A", known_at),
                # a later sighting changes nothing
                ("V-NEW", "C-0", known_at + timedelta(days=1)),
            ],
        )
        snapshot = warehouse.snapshot()
        merged = _cached_links(backend, snapshot, horizon, key)
        whole = backend.to_pyarrow(anonymous_links(backend, snapshot, horizon))

    def by_visitor(table: pa.Table) -> dict[str, tuple[str, object]]:
        rows = table.to_pylist()
        return {r["linked_anonymous_id"]: (r["linked_customer_id"], r["linked_at"]) for r in rows}

    assert by_visitor(merged) == by_visitor(whole)
    assert by_visitor(merged)[visitor][0] == "C-EARLIER"
    assert by_visitor(merged)["V-NEW"][0] == "C-A"
    assert merged.num_rows == before.num_rows + 1


def _append_events(warehouse: Warehouse, sightings: list[tuple[str, str, datetime]]) -> None:
    schema = TABLES["events"].arrow_schema(with_lineage=True)
    rows = [
        {
            "event_id": f"link-test-{index}",
            "customer_id": customer,
            "anonymous_id": visitor,
            "event_type": "login",
            "ts": at,
            "properties": None,
            "_batch_id": "link-test",
            "_source_file": "test",
            "_source_line": index,
            "_ingested_at": CLOCK,
        }
        for index, (visitor, customer, at) in enumerate(sightings)
    ]
    with warehouse.transaction("link-test") as transaction:
        transaction.append_arrow("events", pa.Table.from_pylist(rows, schema=schema))
