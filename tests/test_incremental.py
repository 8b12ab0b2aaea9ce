"""Appending a day of data: the incremental build equals a full refresh."""

from __future__ import annotations

import pandas as pd

from pyprofile.dbt import run_dbt
from pyprofile.demo import generate_demo
from pyprofile.warehouse import Warehouse

TABLES = {
    "features.int_order_lines": ["order_id", "product_id", "quantity"],
    "features.int_session_days": ["customer_id", "session_id", "event_date"],
    "features.customer_features": ["customer_id"],
    "features.customer_training": ["customer_id"],
    "features.customer_product_interactions": ["customer_id", "product_id"],
}


def _snapshot(path) -> dict[str, pd.DataFrame]:
    with Warehouse.open(path) as wh:
        return {
            t: wh.read(t).to_pandas().sort_values(keys).reset_index(drop=True)
            for t, keys in TABLES.items()
        }


def test_appended_day_incremental_equals_full_refresh(tmp_path):
    path = tmp_path / "inc.duckdb"
    generate_demo(path, customers=300, seed=5)
    run_dbt("build", path, select=["staging", "features"])
    with Warehouse.open(path) as wh:
        lines_before = wh.count("features.int_order_lines")
        # a new day: copies of the last day's orders, lines and events, one day later
        wh.execute("""insert into raw.orders select 'N' || order_id, customer_id,
            ordered_at + interval 1 day, amount, discount, status from raw.orders
            where cast(ordered_at as date) = date '2025-12-31'""")
        wh.execute("""insert into raw.order_items select 'N' || i.order_id, i.product_id,
            i.quantity, i.unit_price from raw.order_items i join raw.orders o using (order_id)
            where cast(o.ordered_at as date) = date '2025-12-31'""")
        wh.execute("""insert into raw.events select customer_id, event_at + interval 1 day,
            event_type, product_id, 'N' || session_id from raw.events
            where cast(event_at as date) = date '2025-12-31'""")
        new_lines = wh.scalar("select count(*) from raw.order_items where order_id like 'N%'")
    assert new_lines > 0
    run_dbt("build", path, select=["staging", "features"])  # incremental
    incremental = _snapshot(path)
    assert len(incremental["features.int_order_lines"]) == lines_before + new_lines
    assert str(incremental["features.customer_features"].as_of_date.iloc[0]) == "2026-01-01"
    run_dbt("build", path, select=["staging", "features"], full_refresh=True)
    full = _snapshot(path)
    for table in TABLES:
        pd.testing.assert_frame_equal(incremental[table], full[table], obj=table)
