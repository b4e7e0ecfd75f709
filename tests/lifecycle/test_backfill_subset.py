"""Features of a subset of customers, the building block of the incremental history."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from perennial.config import Settings
from perennial.features.snapshot import compute_features
from perennial.lifecycle.as_of_dependence import POPULATION_WIDE
from perennial.store.backends import Backend
from perennial.store.warehouse import Warehouse
from tests.features.comparison import assert_same_rows
from tests.features.fixture_store import AS_OF

SUBSET = ["sameday", "browser", "windows", "prospect", "nobody"]


@pytest.fixture
def backend(fixture_backend: Backend) -> Backend:
    return fixture_backend


def test_a_subset_s_rows_equal_the_full_table_s_but_for_the_population_wide_columns(
    backend: Backend, fixture_settings: Settings
) -> None:
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    customers = ibis.memtable(pa.table({"customer_id": SUBSET}))

    subset = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF, customers=customers))
    full = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF))

    # "nobody" is not in the store: a subset never invents customers.
    assert sorted(subset.column("customer_id").to_pylist()) == sorted(SUBSET[:-1])
    wanted = full.filter(pc.is_in(full.column("customer_id"), pa.array(SUBSET)))
    assert_same_rows(
        subset.drop_columns(list(POPULATION_WIDE)),
        wanted.drop_columns(list(POPULATION_WIDE)),
        key="customer_id",
        tolerance=0.0,
    )
