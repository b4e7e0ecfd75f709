"""Partial customer updates are laid over the stored row and over each other, in order."""

from __future__ import annotations

from perennial.config import Settings
from perennial.ingest.customer_updates import fold_customer_updates, stored_customer_records
from perennial.ingest.mapping import DuplicatePolicy
from perennial.ingest.pipeline import ingest_records
from tests.conftest import NOW


def _store(settings: Settings, *records: dict[str, object]) -> None:
    ingest_records(
        list(records),
        settings,
        table="customers",
        source="t",
        on_duplicate=DuplicatePolicy.LATEST_WINS,
        now=NOW,
    )


def test_an_update_keeps_every_stored_field_it_does_not_name(settings: Settings) -> None:
    _store(
        settings,
        {
            "customer_id": "C1",
            "name": "李明",
            "phone": "13812345678",
            "created_at": "2025-01-02T03:04:05Z",
            "birthday": "1990-05-06",
            "consent_sms": True,
            "attributes": {"tier": "gold", "city": "杭州"},
        },
    )

    folded = fold_customer_updates(
        [
            {
                "customer_id": "C1",
                "email": "LI@Example.com",
                "name": None,
                "attributes": {"tier": "vip"},
            }
        ],
        settings,
    )

    assert folded == [
        {
            "customer_id": "C1",
            "name": "李明",
            "phone": "+8613812345678",
            "email": "LI@Example.com",
            "created_at": "2025-01-02T03:04:05.000000Z",
            "birthday": "1990-05-06",
            "consent_sms": True,
            "attributes": {"tier": "vip", "city": "杭州"},
        }
    ]
    _store(settings, *folded)
    stored = stored_customer_records(settings, ["C1"])["C1"]
    assert stored["email"] == "li@example.com"
    assert stored["phone"] == "+8613812345678"
    assert stored["attributes"] == {"city": "杭州", "tier": "vip"}


def test_updates_in_one_batch_build_on_each_other_and_on_nothing_for_new_customers(
    settings: Settings,
) -> None:
    folded = fold_customer_updates(
        [
            {"customer_id": "N1", "name": "Wang"},
            {"customer_id": "N2", "region": "上海"},
            {"customer_id": "N1", "email": "w@example.com", "attributes": {"a": 1}},
            {"customer_id": "N1", "attributes": {"b": 2}},
        ],
        settings,
    )

    assert folded[-1] == {
        "customer_id": "N1",
        "name": "Wang",
        "email": "w@example.com",
        "attributes": {"a": 1, "b": 2},
    }
    assert folded[1] == {"customer_id": "N2", "region": "上海"}


def test_folding_again_over_the_stored_result_changes_nothing(settings: Settings) -> None:
    updates = [{"customer_id": "C1", "name": "A"}, {"customer_id": "C1", "email": "a@b.cn"}]
    first = fold_customer_updates(updates, settings)
    _store(settings, *first)
    second = fold_customer_updates(updates, settings)
    report = ingest_records(
        second,
        settings,
        table="customers",
        source="t",
        on_duplicate=DuplicatePolicy.LATEST_WINS,
        now=NOW,
    )

    assert second[-1] == first[-1]
    assert (report.accepted, report.replaced) == (0, 0)
