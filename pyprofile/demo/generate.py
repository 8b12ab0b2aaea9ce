"""Write the demo warehouse: the raw tables (replaced), chunk by chunk, plus a few dirty rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pyarrow as pa

from pyprofile.demo.chunk import generate_chunk
from pyprofile.demo.products import draw_catalog
from pyprofile.demo.sampling import DaySampler
from pyprofile.demo.seasonality import DAYS, DEFAULT_END, daily_weights
from pyprofile.errors import InputError
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.sql import qualified, string

RAW_TABLES = ["customers", "orders", "order_items", "products", "events"]
# Every table the demo writes carries this comment: only such tables are ever replaced.
DEMO_MARK = "pyprofile demo data"
DEMO_TABLES = [*(f"raw.{t}" for t in RAW_TABLES), "demo_truth.customer_types"]

_DDL = """
create schema if not exists raw;
create schema if not exists demo_truth;
create or replace table raw.products (product_id varchar, category varchar, brand varchar,
    price decimal(12, 2));
create or replace table raw.customers (customer_id varchar, email varchar, signup_at timestamp,
    birth_date date, gender varchar, income_band varchar, region varchar, channel varchar);
create or replace table raw.orders (order_id varchar, customer_id varchar, ordered_at timestamp,
    amount decimal(12, 2), discount decimal(12, 2), status varchar);
create or replace table raw.order_items (order_id varchar, product_id varchar, quantity integer,
    unit_price decimal(12, 2));
create or replace table raw.events (customer_id varchar, event_at timestamp, event_type varchar,
    product_id varchar, session_id varchar);
create or replace table demo_truth.customer_types (customer_id varchar, customer_type varchar);
"""

_PRODUCTS = """insert into raw.products select 'P' || lpad(product_no::varchar, 5, '0'),
    category, brand, price from src"""

# Each reads the registered chunk table ``src``; the customers' one binds the end date.
_INSERTS = {
    "customers": """insert into raw.customers select
        'C' || lpad(customer_no::varchar, 7, '0'),
        'customer' || customer_no || '@example.com',
        to_timestamp(signup_sec)::timestamp,
        (cast(? as date) - to_years(age) - to_days(birth_offset::int))::date,
        case when null_gender then null else gender end,
        case when null_income then null else income_band end,
        region, channel
        from src""",
    "orders": """insert into raw.orders select
        'O' || lpad(order_no::varchar, 9, '0'), 'C' || lpad(customer_no::varchar, 7, '0'),
        to_timestamp(ordered_sec)::timestamp, amount, discount, status from src""",
    "items": """insert into raw.order_items select
        'O' || lpad(order_no::varchar, 9, '0'), 'P' || lpad(product_no::varchar, 5, '0'),
        quantity, unit_price from src""",
    "events": """insert into raw.events select
        'C' || lpad(customer_no::varchar, 7, '0'), to_timestamp(event_sec)::timestamp,
        event_type, 'P' || lpad(product_no::varchar, 5, '0'), 'S' || session_no from src""",
    "truth": """insert into demo_truth.customer_types select
        'C' || lpad(customer_no::varchar, 7, '0'), customer_type from src""",
}

# A few rows that break the input contract, as real exports do; staging rejects them.
_DUPLICATES = """insert into raw.orders select * from raw.orders
    where order_id in (select order_id from raw.orders order by order_id limit 3)"""
_BAD_ORDERS = """insert into raw.orders values
    ('O_BAD_NULL_CUSTOMER', null, cast(? as timestamp), 19.99, 0, 'completed'),
    ('O_BAD_NEGATIVE', (select min(customer_id) from raw.customers), cast(? as timestamp),
        -25.00, 0, 'completed'),
    ('O_BAD_ORPHAN', 'C_UNKNOWN', cast(? as timestamp), 42.00, 0, 'completed'),
    ('O_BAD_FUTURE', (select max(customer_id) from raw.customers), timestamp '2999-01-01 00:00:00',
        10.00, 0, 'completed')"""


@dataclass
class DemoSummary:
    customers: int
    orders: int
    order_items: int
    products: int
    events: int


def generate_demo(
    db,
    *,
    customers: int = 10_000,
    seed: int = 42,
    end_date: date = DEFAULT_END,
    n_products: int = 500,
    chunk_size: int = 50_000,
    dirty: bool = True,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> DemoSummary:
    """Write the demo raw tables into the warehouse ``db``; returns row counts.

    Tables an earlier demo wrote are replaced; a table of the same name that the demo did not
    write (the user's data) is never replaced unless ``force``.
    """
    if customers < 1:
        raise InputError(f"customers must be at least 1, got {customers}")
    wh = Warehouse.open(db)
    if not force:
        _refuse_user_tables(wh)
    rng = np.random.default_rng(seed)
    start = end_date - timedelta(days=DAYS - 1)
    sampler = DaySampler(daily_weights(start, DAYS))
    catalog = draw_catalog(rng, n_products)
    with wh.transaction() as con:
        for stmt in _DDL.split(";"):
            if stmt.strip():
                con.execute(stmt)
        for name in DEMO_TABLES:
            con.execute(f"comment on table {qualified(name)} is {string(DEMO_MARK)}")
        _insert(con, _PRODUCTS, catalog.table)
    counters = {"order": 1, "session": 1}
    done = 0
    while done < customers:
        n = min(chunk_size, customers - done)
        tables = generate_chunk(rng, done + 1, n, catalog, sampler, start, counters)
        # one transaction per chunk keeps memory bounded however many customers are asked for
        with wh.transaction() as con:
            for key, table in tables.items():
                _insert(con, _INSERTS[key], table, [end_date] if key == "customers" else None)
        done += n
        if progress:
            progress(done, customers)
    if dirty and customers >= 10:
        _add_dirty_orders(wh, end_date)
    counts = {t: wh.count(f"raw.{t}") for t in RAW_TABLES}
    wh.close()
    return DemoSummary(**counts)


def _refuse_user_tables(wh: Warehouse) -> None:
    """Raise unless every demo table that already exists was written by the demo."""
    theirs = [
        name
        for name in DEMO_TABLES
        if wh.exists(name)
        and wh.scalar(
            "select comment from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            name.split("."),
        )
        != DEMO_MARK
    ]
    if theirs:
        raise InputError(
            f"{', '.join(theirs)} already exist and were not written by pyprofile demo-data: "
            "refusing to replace them (pick another --db, or pass --force to replace them)"
        )


def _insert(con, sql: str, table: pa.Table, params: list | None = None) -> None:
    """Run an insert that reads ``table`` as the view ``src``."""
    con.register("src", table)
    try:
        con.execute(sql, params)
    finally:
        con.unregister("src")


def _add_dirty_orders(wh: Warehouse, end_date: date) -> None:
    """Three duplicated orders and four invalid ones, in one transaction."""
    at = [datetime.combine(end_date, time(hour)) for hour in (10, 11, 12)]
    with wh.transaction() as con:
        con.execute(_DUPLICATES)
        con.execute(_BAD_ORDERS, at)
