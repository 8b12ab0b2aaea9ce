"""The feature layer against independent references: pandas on demo data, lifetimes on CDNOW."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from pyprofile.dbt import run_dbt
from pyprofile.ingest import load_file
from pyprofile.warehouse import Warehouse

LIFETIMES_COLS = ["frequency", "recency", "T", "monetary_value"]
NON_PURCHASE = ["cancelled", "canceled", "returned", "refunded"]


def pandas_rfm(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """RFM and the lifetimes-style summary written independently with pandas."""
    o = orders[(orders.ordered_at.dt.normalize() <= as_of) & ~orders.status.isin(NON_PURCHASE)]
    o = o.assign(day=o.ordered_at.dt.normalize(), amount=o.amount.astype(float))
    daily = o.groupby(["customer_id", "day"], as_index=False).amount.sum()
    first = daily.groupby("customer_id").day.transform("min")
    repeat = daily[daily.day > first]
    g = daily.groupby("customer_id")
    out = pd.DataFrame(
        {
            "order_count": o.groupby("customer_id").size(),
            "monetary_amount": o.groupby("customer_id").amount.sum(),
            "frequency": g.size() - 1,
            "recency": (g.day.max() - g.day.min()).dt.days,
            "T": (as_of - g.day.min()).dt.days,
            "recency_days": (as_of - g.day.max()).dt.days,
        }
    )
    out["monetary_value"] = repeat.groupby("customer_id").amount.mean().reindex(out.index).fillna(0)
    for col, key, asc in [
        ("r_score", "recency_days", False),
        ("f_score", "order_count", True),
        ("m_score", "monetary_amount", True),
    ]:
        ranks = out[key].rank(method="min", ascending=asc)
        pct = (ranks - 1) / (len(out) - 1)
        out[col] = np.minimum(5, 1 + np.floor(5 * pct)).astype(int)
    return out


@pytest.fixture(scope="module")
def features(demo_wh):
    return demo_wh.read("features.customer_features").to_pandas().set_index("customer_id")


def test_rfm_and_lifetimes_columns_match_pandas_reference(demo_wh, features):
    orders = demo_wh.read("staging.stg_shop__orders").to_pandas()
    as_of = pd.Timestamp(features.as_of_date.iloc[0])
    ref = pandas_rfm(orders, as_of)
    buyers = features[features.has_purchased]
    assert set(buyers.index) == set(ref.index)
    got = buyers.loc[ref.index]
    for col in [
        "order_count",
        "frequency",
        "recency",
        "T",
        "recency_days",
        "r_score",
        "f_score",
        "m_score",
    ]:
        np.testing.assert_array_equal(got[col].to_numpy(int), ref[col].to_numpy(int), err_msg=col)
    for col in ["monetary_amount", "monetary_value"]:
        np.testing.assert_allclose(got[col].astype(float), ref[col], rtol=1e-12, err_msg=col)
    # non-buyers: zero counts, null scores, the 'No Purchases' segment
    never = features[~features.has_purchased]
    assert (never.order_count == 0).all() and never.r_score.isna().all()
    assert (never.rfm_segment == "No Purchases").all()


def test_lifetimes_summary_on_demo_data(demo_wh, features):
    from lifetimes.utils import summary_data_from_transaction_data

    orders = demo_wh.read("staging.stg_shop__orders").to_pandas()
    orders = orders[~orders.status.isin(NON_PURCHASE)].assign(
        amount=lambda d: d.amount.astype(float)
    )
    as_of = pd.Timestamp(features.as_of_date.iloc[0])
    ref = summary_data_from_transaction_data(
        orders,
        "customer_id",
        "ordered_at",
        monetary_value_col="amount",
        observation_period_end=as_of,
        freq="D",
    )
    got = features.loc[ref.index, LIFETIMES_COLS].astype(float)
    np.testing.assert_array_equal(
        got[["frequency", "recency", "T"]], ref[["frequency", "recency", "T"]]
    )
    np.testing.assert_allclose(got.monetary_value, ref.monetary_value, rtol=1e-12)


def test_other_features_match_pandas(demo_wh, features):
    orders = demo_wh.read("staging.stg_shop__orders").to_pandas()
    as_of = pd.Timestamp(features.as_of_date.iloc[0])
    o = orders[orders.ordered_at.dt.normalize() <= as_of]
    placed = o[o.status != "cancelled"]
    rr = placed.groupby("customer_id").status.apply(lambda s: (s == "returned").mean())
    ds = placed.groupby("customer_id").apply(
        lambda d: (
            d.discount_amount.astype(float).sum()
            / (d.amount.astype(float) + d.discount_amount.astype(float)).sum()
        ),
        include_groups=False,
    )
    np.testing.assert_allclose(features.loc[rr.index, "return_rate"], rr, rtol=1e-12)
    np.testing.assert_allclose(features.loc[ds.index, "discount_share"], ds, rtol=1e-12)
    shares = features.filter(like="category_").filter(like="_share")
    buyers = features.has_purchased
    np.testing.assert_allclose(shares[buyers].sum(axis=1), 1.0, rtol=1e-9)
    events = demo_wh.read("staging.stg_shop__events").to_pandas()
    views = events[events.event_type == "product_view"].groupby("customer_id").size()
    np.testing.assert_array_equal(features.loc[views.index, "product_view_events"], views)
    assert features.spend_trend.between(-1, 1).all()
    assert features.age.between(18, 95).all()


def test_staged_plus_rejected_equals_raw(demo_wh):
    for table in ["customers", "orders", "order_items", "products", "events"]:
        raw = demo_wh.count(f"raw.{table}")
        staged = demo_wh.count(f"staging.stg_shop__{table}")
        rejected = demo_wh.scalar(
            "select count(*) from staging.rejected_rows where table_name = ?", [table]
        )
        assert staged + rejected == raw, table
    reasons = dict(
        demo_wh.query(
            "select reason, count(*) from staging.rejected_rows where table_name = 'orders' group by 1"
        )
        .to_pandas()
        .values
    )
    assert reasons == {
        "duplicate order_id": 3,
        "null customer_id": 1,
        "negative amount": 1,
        "orphan order: unknown customer_id": 1,
        "future ordered_at": 1,
    }


def test_rfm_macro_in_udfs_matches_dbt_rules(demo_wh, features):
    """The persisted SQL macro and the dbt macro give the same segment on all 125 scores."""
    from pyprofile.dbt import publish_static_functions

    wh = Warehouse.open(":memory:")
    assert "ml.rfm_segment" in publish_static_functions(wh)
    grid = wh.query(
        "select r, f, m, ml.rfm_segment(r, f, m) seg from range(1, 6) a(r), range(1, 6) b(f), "
        "range(1, 6) c(m)"
    ).to_pandas()
    assert grid.seg.nunique() == 11
    seen = features.dropna(subset=["r_score"])
    lookup = {(r.r, r.f, r.m): r.seg for r in grid.itertuples()}
    for row in seen.itertuples():
        assert lookup[(row.r_score, row.f_score, row.m_score)] == row.rfm_segment


def _cdnow() -> pd.DataFrame:
    import lifetimes

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["customer_index", "customer_id", "date", "quantity", "amount"],
    )
    return df


def test_cdnow_matches_lifetimes_summary(tmp_path):
    """Real transactions, loaded like a user's thin export: no order ids, no customers table."""
    from lifetimes.utils import summary_data_from_transaction_data

    df = _cdnow()
    csv = tmp_path / "cdnow.csv"
    df[["customer_id", "date", "amount"]].rename(
        columns={"customer_id": "CustID", "date": "Date", "amount": "Total"}
    ).to_csv(csv, index=False)
    db = tmp_path / "cdnow.duckdb"
    report = load_file(
        db,
        "orders",
        csv,
        mapping={"customer_id": "CustID", "ordered_at": "Date", "amount": "Total"},
    )
    assert (report.read, report.loaded, report.rejected) == (len(df), len(df), 0)
    assert any("%Y%m%d" in n for n in report.notes)
    run_dbt("build", db, select=["staging", "features"])
    with Warehouse.open(db) as wh:
        got = wh.read("features.customer_features").to_pandas().set_index("customer_id")
    tx = df.assign(
        date=pd.to_datetime(df.date.astype(str), format="%Y%m%d"),
        customer_id=df.customer_id.astype(str),
    )
    ref = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end=tx.date.max(),
        freq="D",
    )
    assert len(got) == len(ref) == df.customer_id.nunique()
    got = got.loc[ref.index]
    for col in ["frequency", "recency", "T"]:
        np.testing.assert_array_equal(got[col].to_numpy(int), ref[col].to_numpy(int), err_msg=col)
    np.testing.assert_allclose(got.monetary_value.astype(float), ref.monetary_value, rtol=1e-12)
