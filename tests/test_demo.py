import hashlib

import numpy as np
import pytest

from pyprofile.demo import TYPES, generate_demo
from pyprofile.warehouse import Warehouse


def _digest(path) -> str:
    with Warehouse.open(path) as wh:
        h = hashlib.sha256()
        for table in ["customers", "orders", "order_items", "products", "events"]:
            rows = wh.query(f"select * from raw.{table} order by all").to_pandas()
            h.update(rows.to_csv(index=False).encode())
        return h.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo_small") / "d.duckdb"
    generate_demo(path, customers=800, seed=3)
    return path


def test_same_seed_same_data_and_different_seed_differs(small, tmp_path):
    again = tmp_path / "again.duckdb"
    generate_demo(again, customers=800, seed=3)
    other = tmp_path / "other.duckdb"
    generate_demo(other, customers=800, seed=4)
    assert _digest(small) == _digest(again)
    assert _digest(small) != _digest(other)


def test_hidden_types_are_separate_and_complete(small):
    with Warehouse.open(small) as wh:
        types = dict(
            wh.query("select customer_type, count(*) n from demo_truth.customer_types group by 1")
            .to_pandas()
            .values
        )
        assert set(types) == {t.name for t in TYPES}
        assert sum(types.values()) == wh.count("raw.customers") == 800
        # no raw table carries the hidden type
        for table in ["customers", "orders", "order_items", "products", "events"]:
            assert "customer_type" not in wh.columns(f"raw.{table}")


def test_types_differ_in_behaviour(small):
    with Warehouse.open(small) as wh:
        df = (
            wh.query(
                """select t.customer_type,
                count(o.order_id) / count(distinct t.customer_id) as orders_per_customer,
                avg(o.amount) as aov, avg((o.discount > 0)::int) as discount_rate
            from demo_truth.customer_types t left join raw.orders o using (customer_id)
            group by 1"""
            )
            .to_pandas()
            .set_index("customer_type")
        )
        browsers = wh.scalar(
            """select count(distinct e.customer_id) from raw.events e
            join demo_truth.customer_types t using (customer_id)
            where t.customer_type = 'window_shopper'"""
        )
    assert df.loc["window_shopper", "orders_per_customer"] == 0
    assert browsers > 0  # some customers browse and never buy
    assert df.loc["one_off", "orders_per_customer"] == pytest.approx(1, abs=0.05)
    loyal, bargain = df.loc["loyal_high_spender"], df.loc["bargain_hunter"]
    assert loyal.orders_per_customer > 2 * bargain.orders_per_customer / 1.5
    assert loyal.aov > 3 * bargain.aov
    assert bargain.discount_rate > 5 * loyal.discount_rate


def test_seasonality_heavy_tail_and_sessions_before_purchases(small):
    with Warehouse.open(small) as wh:
        by_dow = dict(
            wh.query("select isodow(ordered_at) d, count(*) n from raw.orders group by 1")
            .to_pandas()
            .values
        )
        by_month = dict(
            wh.query("select month(ordered_at) m, count(*) n from raw.orders group by 1")
            .to_pandas()
            .values
        )
        spend = (
            wh.query("select sum(amount) s from raw.orders group by customer_id")
            .to_pandas()["s"]
            .to_numpy(dtype=float)
        )
        late = wh.scalar(
            """select count(*) from raw.orders o where o.order_id not like 'O_BAD_%' and not exists (
                select 1 from raw.events e where e.customer_id = o.customer_id
                and e.event_type = 'checkout' and e.event_at < o.ordered_at
                and e.event_at > o.ordered_at - interval 1 hour)"""
        )
    weekend = (by_dow[6] + by_dow[7]) / 2
    weekday = np.mean([by_dow[d] for d in range(1, 6)])
    assert weekend > 1.1 * weekday
    assert by_month[12] > 1.2 * by_month[2]
    assert np.percentile(spend, 99) > 10 * np.median(spend)  # heavy-tailed spend
    assert late == 0  # every order follows a checkout in the hour before


def test_dirty_rows_are_present_for_staging_to_reject(small):
    with Warehouse.open(small) as wh:
        assert wh.scalar("select count(*) from raw.orders where amount < 0") == 1
        assert wh.scalar("select count(*) from raw.orders where customer_id is null") == 1
        assert (
            wh.scalar(
                "select count(*) from (select order_id from raw.orders group by 1 having count(*) > 1)"
            )
            == 3
        )


def test_never_replaces_tables_the_demo_did_not_write(tmp_path):
    from pyprofile.errors import InputError
    from pyprofile.warehouse import Warehouse

    path = tmp_path / "shop.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("create schema raw")
        wh.execute("create table raw.orders as select 'mine' as order_id")
    with pytest.raises(InputError, match=r"raw.orders already exist.*--force"):
        generate_demo(path, customers=20, seed=1)
    with Warehouse.open(path) as wh:  # untouched, and nothing else was written
        assert wh.query("select * from raw.orders").to_pylist() == [{"order_id": "mine"}]
        assert not wh.exists("raw.customers")
    generate_demo(path, customers=20, seed=1, force=True)
    generate_demo(path, customers=30, seed=1)  # the demo's own tables are replaced freely
    with Warehouse.open(path) as wh:
        assert wh.count("raw.customers") == 30
    with pytest.raises(InputError, match="customers must be at least 1"):
        generate_demo(path, customers=0)
