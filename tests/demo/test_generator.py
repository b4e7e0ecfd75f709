"""generate_demo: canonical files, consistent ids, the latent story visible in the data."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import phonenumbers
import polars as pl
import pyarrow.parquet as pq
import pytest

from perennial.demo import DemoDataset, generate_demo
from perennial.demo import generator as generator_module
from perennial.demo.education import EDUCATION_STATUSES
from perennial.schema.docs import EVENT_TYPES as DOCUMENTED_EVENT_TYPES
from perennial.schema.tables import TABLES
from tests.demo.conftest import (
    CUSTOMERS,
    PERIOD_END,
    PERIOD_START,
    DemoTables,
    read_customers,
    read_json_lines,
    read_parquet,
    valid_customers,
    valid_orders,
)

SMALL = 300


def _digests(dataset: DemoDataset) -> dict[str, str]:
    paths = [f.path for f in dataset.files] + [dataset.ground_truth]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.parametrize("block_size", [generator_module.BLOCK_SIZE, 70])
def test_the_same_seed_writes_byte_identical_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_size: int
) -> None:
    monkeypatch.setattr(generator_module, "BLOCK_SIZE", block_size)  # 70: blocks on two threads
    first = generate_demo(tmp_path / "a", customers=SMALL, seed=11)
    second = generate_demo(tmp_path / "b", customers=SMALL, seed=11)

    assert _digests(first) == _digests(second)


def test_different_seeds_write_different_files(tmp_path: Path) -> None:
    first = _digests(generate_demo(tmp_path / "a", customers=SMALL, seed=11))
    second = _digests(generate_demo(tmp_path / "b", customers=SMALL, seed=12))

    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_files_come_in_ingest_order_with_absolute_paths(demo: DemoTables) -> None:
    files = demo.dataset.files

    tables = ["customers", "orders", "order_items", "events", "events", "events"]
    assert [f.table for f in files] == tables
    assert [f.format for f in files] == ["csv", "parquet", "parquet", "parquet", "jsonl", "jsonl"]
    assert [f.path.name for f in files] == [
        "customers.csv", "orders.parquet", "order_items.parquet", "events.parquet",
        "events-identity.jsonl", "events-education.jsonl",
    ]  # fmt: skip
    assert all(f.path.is_absolute() and f.path.exists() for f in files)
    assert demo.dataset.ground_truth.name == "ground_truth.parquet"


def test_every_file_has_exactly_the_canonical_columns_of_its_table(demo: DemoTables) -> None:
    for demo_file in demo.dataset.files:
        expected = list(TABLES[demo_file.table].column_names)
        if demo_file.format == "csv":
            header = demo_file.path.read_text(encoding="utf-8").split("\n", 1)[0]
            assert header.split(",") == expected
        elif demo_file.format == "parquet":
            schema = pq.read_schema(demo_file.path)
            assert schema.names == expected
            canonical = TABLES[demo_file.table].arrow_schema(with_lineage=False)
            assert [f.type for f in schema] == [f.type for f in canonical]
        else:
            records, _ = read_json_lines(demo_file.path)
            assert {tuple(r) for r in records} == {tuple(expected)}


def test_row_counts_match_the_files(demo: DemoTables) -> None:
    dataset = demo.dataset
    for demo_file in dataset.files:
        if demo_file.format == "parquet":
            assert pq.read_metadata(demo_file.path).num_rows == demo_file.rows
        else:
            lines = demo_file.path.read_bytes().count(b"\n")
            assert lines == demo_file.rows + (demo_file.format == "csv")
    assert dataset.customers == CUSTOMERS
    assert dataset.orders == sum(f.rows for f in dataset.files if f.table == "orders")
    assert dataset.events == sum(f.rows for f in dataset.files if f.table == "events")


def test_ids_are_unique_within_the_dataset(demo: DemoTables) -> None:
    customers = read_customers(demo.dataset.files[0].path)["customer_id"].drop_nulls()
    orders = read_parquet(demo.dataset, "orders").column("order_id").to_pylist()
    event_ids = demo.events["event_id"].to_list()
    event_ids += [r["event_id"] for r in demo.identity + demo.education]

    assert customers.filter(customers != "").is_unique().all()
    assert len(set(orders)) == len(orders)
    assert demo.order_items["item_id"].is_unique().all()
    assert len(set(event_ids)) == len(event_ids)
    assert customers[0] == "C0000001"
    assert orders[0].startswith("O") and event_ids[0].startswith("E")
    assert demo.order_items["item_id"][0].startswith("I")


def test_every_valid_order_belongs_to_a_listed_customer(demo: DemoTables) -> None:
    listed = set(demo.customers["customer_id"])
    truth = set(demo.ground_truth["customer_id"])
    buyers = set(demo.orders["customer_id"])

    unlisted = buyers - listed
    assert buyers <= truth
    assert len(unlisted) <= demo.dataset.customers - demo.customers.height  # broken rows only


def test_every_item_belongs_to_an_order_and_repeats_its_time(demo: DemoTables) -> None:
    orders = pl.from_arrow(read_parquet(demo.dataset, "orders"))
    joined = demo.order_items.join(orders, on="order_id", how="left", suffix="_order")

    assert joined["customer_id"].null_count() == 0
    dirty_future = joined.filter(pl.col("placed_at_order") >= PERIOD_END).height
    assert (joined["placed_at"] != joined["placed_at_order"]).sum() == dirty_future


def test_item_lines_add_up_to_the_amount_plus_the_coupon(demo: DemoTables) -> None:
    lines = demo.order_items.group_by("order_id").agg(
        (pl.col("quantity") * pl.col("unit_price")).sum().alias("gross"),
        pl.col("quantity").sum().alias("units"),
    )
    orders = demo.orders.join(lines, on="order_id")
    discount = (orders["gross"] - orders["amount"]).cast(pl.Float64).round(2)

    assert (orders["units"] == orders["item_count"]).all()
    assert set(discount.unique()) <= {0.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0}
    assert ((discount > 0) == orders["coupon_code"].is_not_null()).all()
    assert (orders["amount"] > 0).all()


def test_churned_customers_do_nothing_after_churned_at(demo: DemoTables) -> None:
    churned = demo.ground_truth.filter(pl.col("churned_at").is_not_null()).select(
        "customer_id", "churned_at"
    )
    identity = pl.DataFrame(
        [
            {"customer_id": r["customer_id"], "ts": r["ts"]}
            for r in demo.identity
            if r["customer_id"]
        ]
    )
    activity = pl.concat(
        [
            demo.orders.select("customer_id", pl.col("placed_at").alias("ts")),
            demo.events.select("customer_id", "ts").drop_nulls(),
            identity,
            pl.DataFrame(
                [{"customer_id": r["customer_id"], "ts": r["ts"]} for r in demo.education]
            ),
        ]
    )
    late = activity.join(churned, on="customer_id").filter(pl.col("ts") > pl.col("churned_at"))

    assert churned.height > CUSTOMERS // 4
    assert late.height == 0


def test_alive_at_end_means_not_churned_within_the_period(demo: DemoTables) -> None:
    truth = demo.ground_truth

    assert (truth["alive_at_end"] == truth["churned_at"].is_null()).all()
    assert (truth["churned_at"].drop_nulls() < PERIOD_END).all()


def test_valid_rows_fall_inside_the_period_after_sign_up(demo: DemoTables) -> None:
    created = demo.customers.select(
        "customer_id",
        pl.col("created_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
    )
    orders = demo.orders.join(created, on="customer_id")
    events = demo.events.drop_nulls("customer_id").join(created, on="customer_id")

    assert (created["created_at"] >= PERIOD_START).all()
    assert (orders["placed_at"] >= orders["created_at"]).all()
    assert (events["ts"] >= events["created_at"]).all()
    assert (demo.events["ts"] < PERIOD_END).all()


def test_dirty_rows_are_round_fraction_times_rows_of_each_file(tmp_path: Path) -> None:
    dataset = generate_demo(tmp_path, customers=CUSTOMERS, dirty_fraction=0.01)
    customers = read_customers(dataset.files[0].path)
    orders = pl.from_arrow(pq.read_table(dataset.files[1].path))
    identity_file, education_file = dataset.files[-2:]

    broken = {
        "customers": customers.height - valid_customers(customers).height,
        "orders": orders.height - valid_orders(orders).height,
        "identity": read_json_lines(identity_file.path)[1],
        "education": read_json_lines(education_file.path)[1],
    }
    expected = {
        "customers": round(0.01 * CUSTOMERS),
        "orders": round(0.01 * orders.height),
        "identity": round(0.01 * identity_file.rows),
        "education": round(0.01 * education_file.rows),
    }
    assert broken == expected
    assert dataset.dirty_rows == sum(expected.values())


def test_no_row_is_dirty_when_the_fraction_is_zero(tmp_path: Path) -> None:
    dataset = generate_demo(tmp_path, customers=SMALL, dirty_fraction=0.0)
    customers = read_customers(dataset.files[0].path)
    orders = pl.from_arrow(pq.read_table(dataset.files[1].path))

    assert dataset.dirty_rows == 0
    assert valid_customers(customers).height == customers.height == SMALL
    assert valid_orders(orders).height == orders.height
    assert all(read_json_lines(f.path)[1] == 0 for f in dataset.files[-2:])


def test_the_default_fraction_keeps_a_few_broken_rows_to_show_quarantine(demo: DemoTables) -> None:
    assert 0 < demo.dataset.dirty_rows < demo.dataset.orders // 100
    assert demo.broken_lines > 0


def test_many_customers_are_split_into_blocks_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator_module, "BLOCK_SIZE", 700)
    monkeypatch.setattr(generator_module, "MAX_ROWS_PER_FILE", 2_500)
    dataset = generate_demo(tmp_path, customers=CUSTOMERS, dirty_fraction=0.01)
    order_files = [f for f in dataset.files if f.table == "orders"]
    customers = read_customers(dataset.files[0].path)

    assert [f.path.name for f in order_files[:2]] == [
        "orders-00000.parquet",
        "orders-00001.parquet",
    ]
    assert all(f.rows <= 2_500 for f in dataset.files if f.format == "parquet")
    assert customers.height == CUSTOMERS
    for order_file in order_files:
        orders = pl.from_arrow(pq.read_table(order_file.path))
        assert orders.height - valid_orders(orders).height == round(0.01 * order_file.rows)
    ids = pl.concat([pl.from_arrow(pq.read_table(f.path)) for f in order_files])["order_id"]
    assert ids.is_unique().all()


def test_a_later_run_replaces_every_part_of_an_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(generator_module, "MAX_ROWS_PER_FILE", 500)
        generate_demo(tmp_path, customers=SMALL)
    dataset = generate_demo(tmp_path, customers=SMALL)
    written = {f.path.name for f in dataset.files} | {dataset.ground_truth.name}

    assert {p.name for p in tmp_path.iterdir()} == written


def test_progress_reports_stages_and_nothing_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stages: list[str] = []
    generate_demo(tmp_path, customers=SMALL, progress=stages.append)

    assert stages[0] == "simulating block 1/1"
    assert stages[-1] == "done"
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "arguments",
    [
        {"customers": 0},
        {"seed": -1},
        {"dirty_fraction": -0.1},
        {"dirty_fraction": 1.0},
        {"start": date(2025, 1, 1), "end": date(2024, 12, 31)},
    ],
)
def test_impossible_arguments_are_refused(tmp_path: Path, arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_demo(tmp_path, **arguments)  # type: ignore[arg-type]


def test_each_education_status_occurs_and_matches_the_events(demo: DemoTables) -> None:
    statuses = Counter(demo.ground_truth["education_status"].drop_nulls())
    lessons: Counter[str] = Counter()
    kinds: dict[str, set[str]] = {}
    for record in demo.education:
        kinds.setdefault(record["customer_id"], set()).add(record["event_type"])
        if record["event_type"] == "lesson_completed":
            lessons[record["customer_id"]] += 1
    truth = dict(demo.ground_truth.select("customer_id", "education_status").iter_rows())

    assert set(statuses) == set(EDUCATION_STATUSES)
    assert statuses["in_progress"] > statuses["certified"] > 0
    for customer, seen in kinds.items():
        status = truth[customer]
        if "exam_passed" in seen:
            assert status == "certified"
        elif lessons[customer] == 0:
            assert status == "bought_not_started"
        else:
            assert status in {"in_progress", "finished_no_certificate"}


def test_repeat_purchases_track_the_latent_purchase_rate(demo: DemoTables) -> None:
    """BG/NBD: a customer still alive buys about lambda times a week after the first order."""
    per_customer = demo.orders.group_by("customer_id").agg(
        (pl.len() - 1).alias("repeats"), pl.col("placed_at").min().alias("first")
    )
    weeks = (pl.lit(PERIOD_END) - pl.col("first")).dt.total_hours() / (24 * 7)
    alive = (
        per_customer.join(demo.ground_truth, on="customer_id")
        .filter(
            pl.col("alive_at_end") & (pl.col("first") < pl.datetime(2024, 10, 1, time_zone="UTC"))
        )
        .with_columns(expected=pl.col("purchase_rate_per_week") * weeks)
    )
    ratio = alive["repeats"].sum() / alive["expected"].sum()

    assert alive.height > 100
    assert 0.85 < ratio < 1.15
    assert alive.select(pl.corr("repeats", "expected")).item() > 0.8


def test_a_higher_dropout_probability_means_fewer_repeat_purchases(demo: DemoTables) -> None:
    repeats = demo.orders.group_by("customer_id").agg((pl.len() - 1).alias("repeats"))
    by_dropout = (
        repeats.join(demo.ground_truth, on="customer_id")
        .with_columns(high=pl.col("dropout_probability") > 0.3)
        .group_by("high")
        .agg(pl.col("repeats").mean(), (~pl.col("alive_at_end")).mean().alias("churned"))
        .sort("high")
    )

    low, high = by_dropout.iter_rows(named=True)
    assert low["repeats"] > 1.5 * high["repeats"]
    assert low["churned"] < high["churned"]


def test_favourite_category_customers_repurchase_near_its_cycle(demo: DemoTables) -> None:
    lines = demo.order_items.join(demo.orders.select("order_id", "customer_id"), on="order_id")
    favourite = lines.join(
        demo.ground_truth.select("customer_id", pl.col("favourite_category").alias("category")),
        on=["customer_id", "category"],
    )
    gaps = (
        favourite.unique(["customer_id", "order_id"])
        .sort("customer_id", "placed_at")
        .with_columns(
            gap=(pl.col("placed_at").diff().over("customer_id")).dt.total_hours() / 24,
        )
        .group_by("category")
        .agg(pl.col("gap").median())
    )
    median = dict(gaps.iter_rows())

    assert median["fruit"] < median["milk"] < median["coffee"] < median["shampoo"]
    assert median["shampoo"] < median["detergent"]


def test_identify_events_link_anonymous_ids_with_earlier_page_views(demo: DemoTables) -> None:
    identifies = [r for r in demo.identity if r["event_type"] == "identify"]
    anonymous_views: dict[str, list[object]] = {}
    for record in demo.identity:
        if record["event_type"] == "page_view":
            assert record["customer_id"] is None
            anonymous_views.setdefault(record["anonymous_id"], []).append(record["ts"])
    linked = 0
    for identify in identifies:
        assert identify["customer_id"] and identify["anonymous_id"]
        assert isinstance(identify["properties"], dict)
        earlier = anonymous_views.get(identify["anonymous_id"], [])
        assert all(ts < identify["ts"] for ts in earlier)  # type: ignore[operator]
        linked += bool(earlier)

    assert len(identifies) > CUSTOMERS // 10
    assert linked > 0.95 * len(identifies)
    orphans = set(anonymous_views) - {r["anonymous_id"] for r in identifies}
    assert len(orphans) <= demo.broken_lines  # their identify line was deliberately broken


def test_identify_properties_repeat_the_customers_contacts(demo: DemoTables) -> None:
    contacts = {
        row["customer_id"]: row
        for row in demo.customers.select("customer_id", "email", "phone").iter_rows(named=True)
    }
    for record in demo.identity:
        if record["event_type"] == "identify" and record["customer_id"] in contacts:
            contact = contacts[record["customer_id"]]
            assert record["properties"].get("email") == contact["email"]
            assert record["properties"].get("phone") == contact["phone"]


def test_refunded_orders_have_a_refund_request_and_coupons_an_event(demo: DemoTables) -> None:
    properties = demo.events.with_columns(
        order_id=pl.col("properties").str.json_path_match("$.order_id")
    )
    requested = set(properties.filter(pl.col("event_type") == "refund_request")["order_id"])
    redeemed = set(properties.filter(pl.col("event_type") == "coupon_redeemed")["order_id"])
    refunded = set(demo.orders.filter(pl.col("status") == "refunded")["order_id"])
    couponed = set(demo.orders.filter(pl.col("coupon_code").is_not_null())["order_id"])
    statuses = Counter(demo.orders["status"])

    assert refunded and refunded <= requested
    assert len(couponed - redeemed) <= 0.01 * len(couponed)
    assert statuses["paid"] > 10 * statuses["refunded"] > 0
    assert statuses["refunded"] > statuses["cancelled"] > 0


def test_events_carry_json_object_properties(demo: DemoTables) -> None:
    for kind, text in (
        demo.events.group_by("event_type").agg(pl.col("properties").first()).iter_rows()
    ):
        assert isinstance(orjson.loads(text), dict), kind
    searches = demo.events.filter(pl.col("event_type") == "search")["properties"]
    queries = [orjson.loads(s)["query"] for s in searches]

    assert {"login", "page_view", "add_to_cart", "search", "coupon_redeemed", "complaint",
            "refund_request", "survey_answer"} <= set(demo.events["event_type"])  # fmt: skip
    assert any(q in {"how to cancel", "export my data"} for q in queries)


def test_event_types_are_the_documented_vocabulary(demo: DemoTables) -> None:
    documented = {name for name, _ in DOCUMENTED_EVENT_TYPES}
    written = set(demo.events["event_type"])
    written |= {r["event_type"] for r in demo.identity + demo.education}

    assert written == documented


def test_help_searches_mostly_come_from_customers_about_to_leave(demo: DemoTables) -> None:
    help_searches = demo.events.filter(
        (pl.col("event_type") == "search")
        & pl.col("properties").str.contains("cancel|export|注销|导出|退订|delete|续费")
    ).join(demo.ground_truth, on="customer_id")
    before_churn = help_searches.filter(
        pl.col("churned_at").is_not_null()
        & ((pl.col("churned_at") - pl.col("ts")).dt.total_days() < 60)
    )

    assert before_churn.height > 0.8 * help_searches.height


def test_complaints_raise_the_churn_rate(demo: DemoTables) -> None:
    complainers = set(demo.events.filter(pl.col("event_type") == "complaint")["customer_id"])
    truth = demo.ground_truth.with_columns(complained=pl.col("customer_id").is_in(complainers))
    rates = dict(truth.group_by("complained").agg((~pl.col("alive_at_end")).mean()).iter_rows())

    assert rates[True] > rates[False] + 0.08


def test_contacts_are_messy_but_valid_and_unique(demo: DemoTables) -> None:
    phones = demo.customers["phone"].drop_nulls()
    emails = demo.customers["email"].drop_nulls()
    normalised_phones = [
        phonenumbers.format_number(phonenumbers.parse(p, "CN"), phonenumbers.PhoneNumberFormat.E164)
        for p in phones
    ]
    normalised_emails = [e.strip().lower() for e in emails]

    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p, "CN")) for p in phones)
    assert len(set(normalised_phones)) == len(normalised_phones)
    assert len(set(normalised_emails)) == len(normalised_emails)
    assert any(p.startswith("+86 ") for p in phones) and any("-" in p for p in phones)
    assert any(p.startswith("0086 ") for p in phones)
    assert any(e != e.strip() for e in emails) and any(e != e.lower() for e in emails)
    assert 0.6 < len(emails) / demo.customers.height < 0.95


def test_customer_attributes_are_plausible(demo: DemoTables) -> None:
    customers = demo.customers
    zones = Counter(customers["timezone"])
    attributes = [orjson.loads(a) for a in customers["attributes"].drop_nulls()]

    assert zones.most_common(1)[0][0] == "Asia/Shanghai"
    assert {"Asia/Hong_Kong", "Asia/Singapore"} <= set(zones)
    assert set(customers["acquisition_channel"]) == {
        "organic", "paid_search", "social", "referral", "offline_store", "mini_program",
    }  # fmt: skip
    assert {a["member_level"] for a in attributes} == {"bronze", "silver", "gold", "platinum"}
    assert set(customers["consent_sms"].drop_nulls()) == {"true", "false"}
    assert customers["consent_sms"].null_count() > 0
    birthdays = customers["birthday"].drop_nulls().str.to_date("%Y-%m-%d")
    assert birthdays.dt.year().min() == 1900  # the placeholder year some sources use
    assert 0.85 < birthdays.len() / customers.height < 0.95
