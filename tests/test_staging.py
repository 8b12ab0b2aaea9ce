"""Bad input classes in raw tables land in staging.rejected_rows; missing optional inputs skip."""

from __future__ import annotations

import pandas as pd
import pytest

from pyprofile.dbt import run_dbt
from pyprofile.errors import PyprofileError
from pyprofile.warehouse import Warehouse


@pytest.fixture(scope="module")
def messy_db(tmp_path_factory):
    """Raw tables typed as text (as pointed-at exports often are), with one row per bad class.

    No products or events tables exist: the features that need them must be skipped.
    """
    path = tmp_path_factory.mktemp("messy") / "messy.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("""create table raw.customers as select * from (values
            ('c1', '2023-01-01', 'F'), ('c2', 'not a date', 'M'), ('c3', '2023-02-01', null),
            ('c3', '2023-02-01', null), (null, '2023-03-01', 'F'), ('c4', '2999-01-01', 'M'))
            t(customer_id, signup_at, gender)""")
        wh.execute("""create table raw.orders as select * from (values
            ('o1', 'c1', '2024-01-01 10:00:00', '10.00', 'completed'),
            ('o2', 'c1', '2024-01-05 10:00:00', '20.00', 'completed'),
            ('o3', 'c2', '2024-01-03 10:00:00', '30.00', 'returned'),
            ('o3', 'c2', '2024-01-03 10:00:00', '30.00', 'returned'),
            ('o4', null, '2024-01-03 10:00:00', '5.00', 'completed'),
            (null, 'c1', '2024-01-03 10:00:00', '5.00', 'completed'),
            ('o5', 'c1', '03/01/2024 10h', '5.00', 'completed'),
            ('o6', 'c1', '2999-01-01 10:00:00', '5.00', 'completed'),
            ('o7', 'c1', '2024-01-04 10:00:00', '-5.00', 'completed'),
            ('o8', 'c1', '2024-01-04 10:00:00', 'ten', 'completed'),
            ('o9', 'zz', '2024-01-04 10:00:00', '5.00', 'completed'),
            ('o10', 'c3', '2024-01-10 10:00:00', '0.00', null))
            t(order_id, customer_id, ordered_at, amount, status)""")
        wh.execute("""create table raw.order_items as select * from (values
            ('o1', 'p1', '1', '10.00'), ('o1', 'p2', '0', '3.00'), ('o9', 'p1', '1', '5.00'),
            ('o2', 'p1', '2', '10.00')) t(order_id, product_id, quantity, unit_price)""")
    run_dbt("build", path, select=["staging", "features"], vars={"as_of": "2024-01-31"})
    return path


def test_each_bad_class_is_rejected_with_its_reason(messy_db):
    with Warehouse.open(messy_db) as wh:
        rejected = wh.query(
            "select table_name, record_key, reason from staging.rejected_rows order by all"
        ).to_pylist()
        got = {(r["table_name"], r["record_key"], r["reason"]) for r in rejected}
        assert got == {
            ("customers", "c3", "duplicate customer_id"),
            ("customers", "<null>", "null customer_id"),
            ("orders", "o3", "duplicate order_id"),
            ("orders", "o4", "null customer_id"),
            ("orders", "<null>", "null order_id"),
            ("orders", "o5", "unparseable ordered_at"),
            ("orders", "o6", "future ordered_at"),
            ("orders", "o7", "negative amount"),
            ("orders", "o8", "non-numeric amount"),
            ("orders", "o9", "orphan order: unknown customer_id"),
            ("order_items", "o1/p2", "missing or non-positive quantity"),
            ("order_items", "o9/p1", "orphan line: unknown or rejected order_id"),
        }
        for table in ["customers", "orders", "order_items"]:
            staged = wh.count(f"staging.stg_shop__{table}")
            n_rej = sum(1 for r in rejected if r["table_name"] == table)
            assert staged + n_rej == wh.count(f"raw.{table}")
            # the base layer keeps every raw row, each with its reason or none
            assert wh.count(f"staging.base_shop__{table}") == wh.count(f"raw.{table}")
        # bad optional attributes are nulled, the customer kept
        cust = wh.query("select * from staging.stg_shop__customers order by 1").to_pylist()
        assert [c["customer_id"] for c in cust] == ["c1", "c2", "c3", "c4"]
        assert cust[1]["signup_at"] is None and cust[3]["signup_at"] is None


def test_missing_optional_tables_skip_their_features(messy_db):
    with Warehouse.open(messy_db) as wh:
        f = wh.read("features.customer_features").to_pandas().set_index("customer_id")
    assert set(f.index) == {"c1", "c2", "c3", "c4"}
    assert f.session_count.eq(0).all() and f.view_to_cart_rate.isna().all()
    # no products table: every line's category is unknown
    assert f.loc["c1", "category_unknown_share"] == 1.0
    assert f.loc["c1", "order_count"] == 2 and f.loc["c1", "monetary_amount"] == 30.0
    assert f.loc["c3", "order_count"] == 1 and f.loc["c3", "monetary_amount"] == 0.0
    assert not f.loc["c2", "has_purchased"]  # its only order was returned
    assert f.loc["c2", "return_rate"] == 1.0


def test_point_in_time_ignores_later_orders(tmp_path):
    path = tmp_path / "pit.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("""create table raw.orders as select * from (values
            ('o1', 'c1', timestamp '2024-01-01 10:00', 10.0),
            ('o2', 'c1', timestamp '2024-03-01 10:00', 99.0),
            ('o3', 'c2', timestamp '2024-02-15 10:00', 50.0))
            t(order_id, customer_id, ordered_at, amount)""")
    run_dbt("build", path, select=["staging", "features"], vars={"as_of": "2024-02-01"})
    with Warehouse.open(path) as wh:
        f = wh.read("features.customer_features").to_pandas().set_index("customer_id")
    # c2 did not exist yet; c1's March order is invisible
    assert list(f.index) == ["c1"]
    assert f.loc["c1", "order_count"] == 1 and f.loc["c1", "monetary_amount"] == 10.0
    assert f.loc["c1", "recency_days"] == 31 and f.loc["c1", "T"] == 31


def test_quotes_in_values_stay_values(tmp_path):
    """A category from the data and a status from a var, both with a quote, are values in SQL."""
    path = tmp_path / "quotes.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("""create table raw.orders as select * from (values
            ('o1', 'c1', timestamp '2024-01-01 10:00', 10.0, 'completed'),
            ('o2', 'c1', timestamp '2024-01-02 10:00', 20.0, 'won''t ship'),
            ('o3', 'c1', timestamp '2024-01-03 10:00', 30.0, 'completed'))
            t(order_id, customer_id, ordered_at, amount, status)""")
        # two spellings of one category make one column name: they share it
        wh.execute("""create table raw.products as select * from (values
            ('p1', 'Kids'' Toys'), ('p2', 'garden'), ('p3', 'kids toys'))
            t(product_id, category)""")
        wh.execute("""create table raw.order_items as select * from (values
            ('o1', 'p1', 1, 10.0), ('o2', 'p2', 1, 20.0), ('o3', 'p3', 1, 30.0))
            t(order_id, product_id, quantity, unit_price)""")
    statuses = ["cancelled", "won't ship"]  # plus cancelled, which the RFM unit test uses
    run_dbt(
        "build",
        path,
        select=["staging", "features"],
        vars={
            "as_of": "2024-01-31",
            "non_purchase_statuses": statuses,
            "cancelled_statuses": statuses,
        },
    )
    with Warehouse.open(path) as wh:
        f = wh.read("features.customer_features").to_pandas().set_index("customer_id")
    assert f.loc["c1", "order_count"] == 2 and f.loc["c1", "monetary_amount"] == 40.0
    assert f.loc["c1", "category_kids_toys_share"] == 1.0
    assert [c for c in f.columns if c.startswith("category_")] == ["category_kids_toys_share"]


def test_implausible_dates_are_rejected_or_nulled(tmp_path):
    """Orders and events before min_valid_date (default 1970-01-01) are rejected with a reason;
    an early sign-up is nulled and an age outside 0-120 at as_of is null, the customer kept."""
    path = tmp_path / "dates.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("""create table raw.customers as select * from (values
            ('c1', '2023-01-01', '1800-01-01'), ('c2', '1850-01-01', '1990-05-05'),
            ('c3', '2023-01-01', '2024-06-01')) t(customer_id, signup_at, birth_date)""")
        wh.execute("""create table raw.orders as select * from (values
            ('o1', 'c1', '2024-01-10 10:00:00', '10.00'),
            ('o2', 'c1', '0001-01-01 00:00:00', '5.00'),
            ('o3', 'c2', '1850-06-01 10:00:00', '7.00'),
            ('o4', 'c2', '2024-01-20 10:00:00', '20.00'))
            t(order_id, customer_id, ordered_at, amount)""")
        wh.execute("""create table raw.events as select * from (values
            ('c1', '2024-01-09 09:00:00', 'page_view', 's1'),
            ('c1', '1850-01-01 00:00:00', 'page_view', 's0'))
            t(customer_id, event_at, event_type, session_id)""")
    run_dbt("build", path, select=["staging", "features"], vars={"as_of": "2024-01-31"})
    with Warehouse.open(path) as wh:
        rejected = wh.query(
            "select table_name, record_key, reason from staging.rejected_rows"
        ).to_pylist()
        assert {(r["table_name"], r["record_key"], r["reason"]) for r in rejected} == {
            ("orders", "o2", "ordered_at before min_valid_date"),
            ("orders", "o3", "ordered_at before min_valid_date"),
            ("events", "c1@1850-01-01 00:00:00", "event_at before min_valid_date"),
        }
        for table in ["customers", "orders", "events"]:
            staged = wh.count(f"staging.stg_shop__{table}")
            n_rej = sum(1 for r in rejected if r["table_name"] == table)
            assert staged + n_rej == wh.count(f"raw.{table}")
        signups = dict(
            wh.con.execute(
                "select customer_id, signup_at from staging.stg_shop__customers"
            ).fetchall()
        )
        f = wh.read("features.customer_features").to_pandas().set_index("customer_id")
    assert signups["c2"] is None and signups["c1"] is not None
    assert sorted(f.index) == ["c1", "c2", "c3"]  # every customer kept
    # 0001-01-01 would make T 738,915 days; only the 2024 order counts
    assert f.loc["c1", "order_count"] == 1 and f.loc["c1", "T"] == 21
    assert f.loc["c2", "order_count"] == 1 and f.loc["c2", "monetary_amount"] == 20.0
    assert f.loc["c2", "tenure_days"] == 11  # from the first order: the 1850 sign-up is null
    assert f.loc["c1", "session_count"] == 1 and f.loc["c1", "page_view_events"] == 1
    # born 1800 (age 224) or after as_of (age -1): no age; born 1990-05-05: 33 at as_of
    assert pd.isna(f.loc["c1", "age"]) and pd.isna(f.loc["c3", "age"])
    assert f.loc["c2", "age"] == 33

    # the bound is a var: with 1800-01-01 the 1850 rows are plausible, year 1 still is not
    run_dbt("build", path, select=["staging"], vars={"min_valid_date": "1800-01-01"})
    with Warehouse.open(path) as wh:
        reasons = wh.query("select record_key, reason from staging.rejected_rows").to_pylist()
    assert reasons == [{"record_key": "o2", "reason": "ordered_at before min_valid_date"}]


def test_bad_min_valid_date_is_a_clear_error(tmp_path):
    path = tmp_path / "bad_bound.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute(
            "create table raw.orders as select 'o1' order_id, 'c1' customer_id, "
            "timestamp '2024-01-01' ordered_at, 1.0 amount"
        )
    with pytest.raises(PyprofileError, match=r"var min_valid_date must be a date YYYY-MM-DD"):
        run_dbt("build", path, select=["staging"], vars={"min_valid_date": "1970-01-01' or '1"})
    with Warehouse.open(path) as wh:
        assert wh.count("raw.orders") == 1 and not wh.exists("staging.base_shop__orders")


def test_missing_required_column_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("create table raw.orders as select 'o1' order_id, 'c1' customer_id, 1.0 total")
    with pytest.raises(PyprofileError, match=r"lacks required column 'ordered_at'"):
        run_dbt("build", path, select=["staging"])
