"""Point-in-time training set: labels after the cutoff never leak into the features."""

from __future__ import annotations

import pandas as pd
import pytest

from pyprofile.dbt import run_dbt
from pyprofile.demo import generate_demo
from pyprofile.warehouse import Warehouse

LABELS = ["churned", "purchased", "spend_in_window", "purchase_days_in_window"]
VARS = {"as_of": "2025-12-31", "horizon_days": 90}


def _training(path) -> pd.DataFrame:
    run_dbt("build", path, select=["staging", "+customer_training"], vars=VARS)
    with Warehouse.open(path) as wh:
        return (
            wh.read("features.customer_training").to_pandas().set_index("customer_id").sort_index()
        )


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    path = tmp_path_factory.mktemp("leak") / "leak.duckdb"
    generate_demo(path, customers=400, seed=11)
    before = _training(path)
    with Warehouse.open(path) as wh:
        # after the cutoff (2025-10-02): change every order's amount, add orders, even for
        # customers who had none before
        wh.execute("update raw.orders set amount = amount * 3 + 1 where ordered_at >= '2025-10-03'")
        wh.execute("""insert into raw.orders
            select 'LATE' || customer_id, customer_id, timestamp '2025-12-01 10:00', 77.0, 0,
                   'completed'
            from raw.customers""")
        wh.execute("""insert into raw.order_items
            select 'LATE' || customer_id, 'P00001', 2, 38.5 from raw.customers""")
        wh.execute("""insert into raw.events
            select customer_id, timestamp '2025-12-01 09:59', 'product_view', 'P00001', 'LATE'
            from raw.customers""")
    after = _training(path)
    return before, after


def test_features_at_cutoff_ignore_later_data(changed):
    before, after = changed
    assert (before.as_of_date.astype(str) == "2025-10-02").all()
    assert list(before.index) == list(after.index)
    features = [c for c in before.columns if c not in LABELS]
    pd.testing.assert_frame_equal(before[features], after[features])


def test_labels_do_see_the_window(changed):
    before, after = changed
    assert after.purchased.all() and not after.churned.any()  # everyone bought on 2025-12-01
    assert (after.spend_in_window > before.spend_in_window).all()
    assert before.churned.mean() > 0.1
