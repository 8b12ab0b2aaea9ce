"""The vars route: dbt pointed at tables a shop already has (other schema, table names, column
names and types) builds the same features as the `pyprofile load` route, and the whole
pipeline keeps the shop's integer customer ids as integers (var customer_key_type)."""

from __future__ import annotations

import os

import duckdb
import pandas as pd
import pytest

from pyprofile.dbt import run_dbt
from pyprofile.errors import PyprofileError
from pyprofile.warehouse import Warehouse

# raw.<table> of the demo -> erp.<name>, each column renamed and retyped as an ERP would have it
# (integer keys, DECIMAL and DOUBLE amounts, TIMESTAMP WITH TIME ZONE, upper-case codes)
ERP = {
    "customers": (
        "clients",
        """select (select c.cust from customer_numbers as c where c.customer_id = x.customer_id) as cust, email,
                  cast(signup_at as timestamptz) as joined, birth_date as born, gender,
                  income_band, region as area, channel
           from demo_customers as x""",
    ),
    "orders": (
        "order_header",
        """select n.order_no, (select c.cust from customer_numbers as c where c.customer_id = o.customer_id) as cust,
                  cast(o.ordered_at as timestamptz) as created,
                  cast(o.amount as decimal(18, 4)) as total_gross,
                  cast(o.discount as double) as rebate, upper(o.status) as state
           from demo_orders as o left join order_numbers as n using (order_id)""",
    ),
    "order_items": (
        "lines",
        """select n.order_no, i.product_id as sku, cast(i.quantity as bigint) as qty,
                  cast(i.unit_price as double) as each_price
           from demo_order_items as i left join order_numbers as n using (order_id)""",
    ),
    "products": (
        "catalogue",
        """select product_id as sku, category as cat, brand, cast(price as double) as list_price
           from demo_products""",
    ),
    "events": (
        "web_events",
        """select (select c.cust from customer_numbers as c where c.customer_id = x.customer_id) as cust,
                  cast(event_at as timestamptz) as ts, event_type as kind,
                  product_id as sku, session_id as visit
           from demo_events as x""",
    ),
}

VARS = {
    "raw_schema": "erp",
    "customer_key_type": "bigint",
    "raw_tables": {table: name for table, (name, _) in ERP.items()},
    "column_map": {
        "customers": {
            "customer_id": "cust",
            "signup_at": "joined",
            "birth_date": "born",
            "region": "area",
        },
        "orders": {
            "order_id": "order_no",
            "customer_id": "cust",
            "ordered_at": "created",
            "amount": "total_gross",
            "discount": "rebate",
            "status": "state",
        },
        "order_items": {
            "order_id": "order_no",
            "product_id": "sku",
            "quantity": "qty",
            "unit_price": "each_price",
        },
        "products": {"product_id": "sku", "category": "cat", "price": "list_price"},
        "events": {
            "customer_id": "cust",
            "event_at": "ts",
            "event_type": "kind",
            "product_id": "sku",
            "session_id": "visit",
        },
    },
}


@pytest.fixture(scope="module")
def erp_db(demo_wh, tmp_path_factory):
    """The demo's raw data as an ERP's tables in schema ``erp``, then the whole pipeline built
    on them through the vars (one dbt build; short ml budgets)."""
    path = tmp_path_factory.mktemp("erp") / "shop.duckdb"
    con = duckdb.connect(str(path))
    try:
        for table in ERP:
            con.register(f"demo_{table}", demo_wh.read(f"raw.{table}"))
        con.execute("create schema erp")
        con.execute(
            "create temp table customer_numbers as select customer_id, "
            "dense_rank() over (order by customer_id) as cust from (select customer_id from "
            "demo_customers union select customer_id from demo_orders union select customer_id "
            "from demo_events) where customer_id is not null"
        )
        con.execute(
            "create temp table order_numbers as select order_id, "
            "dense_rank() over (order by order_id) as order_no from (select order_id from "
            "demo_orders union select order_id from demo_order_items) where order_id is not null"
        )
        for name, select in ERP.values():
            con.execute(f"create table shop.erp.{name} as {select}")
        con.execute("create table shop.erp.customer_numbers as from customer_numbers")
    finally:
        con.close()
    run_dbt("build", path, vars={**VARS, "synth_epochs": 2, "segment_epochs": 3})
    return path


def _read(where, sql: str) -> pd.DataFrame:
    """``sql``'s rows from an open Warehouse or a warehouse file (opened as the flows do: dbt may
    hold the file open in this process)."""
    if not isinstance(where, str | os.PathLike):
        return where.query(sql).to_pandas()
    wh = Warehouse.open(where)
    try:
        return wh.query(sql).to_pandas()
    finally:
        wh.close()


def _features(path, ids) -> pd.DataFrame:
    frame = _read(path, "select * from features.customer_features")
    frame["customer_id"] = frame["customer_id"].astype(str).map(ids)
    return frame.sort_values("customer_id").reset_index(drop=True)


def test_an_erp_schema_builds_the_same_features_as_the_load_route(demo_wh, erp_db):
    numbers = _read(erp_db, "select customer_id, cust from erp.customer_numbers")
    ids = dict(zip(numbers["customer_id"], numbers["cust"].astype(str), strict=True))
    expected = _features(demo_wh, ids)
    got = _features(erp_db, {c: c for c in ids.values()})
    assert len(got) == len(expected) > 1000
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


# every table and view with a customer key, from staging to the marts
KEYED = [
    "staging.stg_shop__customers",
    "staging.stg_shop__orders",
    "staging.stg_shop__events",
    "features.customer_features",
    "features.customer_training",
    "features.customer_product_interactions",
    "ml.customer_segments",
    "ml.customer_scores",
    "ml.recommendations",
    "marts.customer_profiles",
]


def test_integer_ids_stay_integers_everywhere(erp_db):
    types = _read(
        erp_db,
        "select table_schema || '.' || table_name as name, data_type from "
        "information_schema.columns where column_name = 'customer_id' "
        "and table_catalog = current_database()",
    )
    types = dict(zip(types["name"], types["data_type"], strict=True))
    assert {name: types.get(name) for name in KEYED} == dict.fromkeys(KEYED, "BIGINT")
    first = _read(erp_db, "select customer_id from marts.customer_profiles order by 1 limit 3")
    assert first["customer_id"].tolist() == [1, 2, 3]  # they sort as numbers
    # the ml outputs join the features on the integer key, every customer once
    joined = _read(
        erp_db,
        "select count(*) as n, count(s.customer_id) as scored, count(g.customer_id) as segmented "
        "from features.customer_features as f "
        "left join ml.customer_scores as s using (customer_id) "
        "left join ml.customer_segments as g using (customer_id)",
    ).iloc[0]
    assert joined["n"] == joined["scored"] == joined["segmented"] > 1000


def test_a_non_integer_id_under_integer_keys_is_rejected_with_its_reason(tmp_path):
    path = tmp_path / "ids.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute("create table raw.customers as select * from (values ('1'), ('2'), ('x7')) "
                "as t(customer_id)")  # fmt: skip
    con.execute(
        "create table raw.orders as select * from (values ('o1', '1', timestamp '2024-01-02', "
        "10.0), ('o2', 'x7', timestamp '2024-01-03', 5.0), ('o3', '2', timestamp '2024-01-04', "
        "7.5)) as t(order_id, customer_id, ordered_at, amount)"
    )
    con.close()
    run_dbt("run", path, select=["staging"], vars={"customer_key_type": "bigint"})
    reasons = _read(
        path,
        "select table_name, reason, count(*) as n from staging.rejected_rows group by all "
        "order by all",
    )
    assert reasons.values.tolist() == [
        ["customers", "non-integer customer_id", 1],
        ["orders", "non-integer customer_id", 1],
    ]
    ids = _read(path, "select customer_id from staging.stg_shop__orders order by 1")
    assert ids["customer_id"].tolist() == [1, 2]


def test_every_raw_row_is_staged_or_rejected_with_the_same_reasons(demo_wh, erp_db):
    sql = (
        "select table_name, reason, count(*) as n from staging.rejected_rows "
        "group by all order by all"
    )
    pd.testing.assert_frame_equal(_read(erp_db, sql), _read(demo_wh, sql))
    for table in ("customers", "orders", "order_items", "products", "events"):
        count = f"select count(*) as n from staging.stg_shop__{table}"
        assert _read(erp_db, count).equals(_read(demo_wh, count)), table


def test_a_schema_named_like_the_warehouse_file_is_one_clear_line(tmp_path):
    """DuckDB cannot create views over schema X of X.duckdb: refused before any SQL runs."""
    path = tmp_path / "erp.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(PyprofileError, match="var raw_schema must be a schema not named like"):
        run_dbt("build", path, select=["staging"], vars=VARS)
