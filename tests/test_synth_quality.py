"""Quality metrics of synthetic data: the SQL report against sdmetrics and scipy, utility, DCR."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from scipy.stats.contingency import association

from pyprofile.models.synth import quality as q
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse import quality as wq

KINDS = {
    "amount": "numerical",
    "count": "numerical",
    "score": "numerical",
    "segment": "categorical",
    "region": "categorical",
    "flag": "boolean",
    "day": "datetime",
}


def table(n: int, shift: float, seed: int) -> pd.DataFrame:
    """Correlated mixed-type customers; ``shift`` moves the synthetic side away from the real."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    segment = np.where(x > 0.5, "high", np.where(x > -0.5, "mid", "low")).astype(object)
    flip = rng.random(n) < 0.15 + 0.1 * shift
    segment[flip] = rng.choice(["high", "mid", "low"], flip.sum())
    region = rng.choice(["n", "s", "e", "w"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    region[rng.random(n) < 0.05] = None
    df = pd.DataFrame(
        {
            "amount": np.round(np.exp(x) * 10, 2),
            "count": rng.poisson(np.exp(0.5 * x) * 3),
            "score": x * 2 + rng.normal(0, 1 + shift, n),
            "segment": segment,
            "region": region,
            "flag": (x + rng.normal(0, 0.5, n)) > 0,
            "day": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, n) + (x * 20).astype(int), unit="D"),
        }
    )
    df.loc[rng.random(n) < 0.1, "amount"] = np.nan
    return df


@pytest.fixture(scope="module")
def frames():
    return table(1500, 0.0, 0), table(1200, 0.3, 1)


@pytest.fixture(scope="module")
def wh(frames):
    wh = Warehouse.open(":memory:")
    wh.write("t.real", frames[0])
    wh.write("t.syn", frames[1])
    return wh


def sdmetrics_report(real, syn, thresholds: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        if not thresholds:
            report.real_correlation_threshold = 0
            report.real_association_threshold = 0
        metadata = {"columns": {c: {"sdtype": k} for c, k in KINDS.items()}}
        report.generate(real, syn, metadata, verbose=False)
    return report


@pytest.mark.parametrize("thresholds", [True, False])
def test_sql_quality_matches_sdmetrics(wh, frames, thresholds):
    ref = sdmetrics_report(*frames, thresholds)
    kwargs = {} if thresholds else {"correlation_threshold": 0, "association_threshold": 0}
    mine = wq.quality_report(wh, "t.real", "t.syn", KINDS, **kwargs)
    props = ref.get_properties().set_index("Property")["Score"]
    assert mine.score == pytest.approx(ref.get_score(), abs=0.02)
    assert mine.column_shapes == pytest.approx(props["Column Shapes"], abs=0.02)
    assert mine.column_pair_trends == pytest.approx(props["Column Pair Trends"], abs=0.02)
    # item by item, the SQL is the same computation (binning edges aside)
    items = {(d["column_1"], d["column_2"]): d for d in mine.details}
    for _, row in ref.get_details("Column Shapes").iterrows():
        assert items[(row["Column"], None)]["score"] == pytest.approx(row["Score"], abs=1e-9)
    pairs = ref.get_details("Column Pair Trends")
    counted = pairs[pairs["Meets Threshold?"].astype(bool)]
    assert len(counted) > 0
    for _, row in counted.iterrows():
        item = items[(row["Column 1"], row["Column 2"])]
        assert item["counted"]
        assert item["score"] == pytest.approx(row["Score"], abs=0.005)
    assert sum(
        d["counted"] for d in mine.details if d["metric_group"] == "column_pair_trends"
    ) == len(counted)


def test_ks_and_tv_against_scipy_and_counts(wh, frames):
    real, syn = frames
    shapes = wq._ks(wh, '"t"."real"', '"t"."syn"', ["amount", "day"], KINDS)
    stat = ks_2samp(real["amount"].dropna(), syn["amount"].dropna()).statistic
    assert shapes["amount"] == pytest.approx(1 - stat, abs=1e-12)
    days = ks_2samp(real["day"].astype("int64"), syn["day"].astype("int64")).statistic
    assert shapes["day"] == pytest.approx(1 - days, abs=1e-12)
    tv = wq._tv(wh, '"t"."real"', '"t"."syn"', ["region"])
    pr = real["region"].value_counts(normalize=True)
    ps = syn["region"].value_counts(normalize=True)
    expected = 1 - 0.5 * pr.subtract(ps, fill_value=0).abs().sum()
    assert tv["region"] == pytest.approx(expected, abs=1e-12)


def test_cramers_v_and_contingency_against_scipy(wh, frames):
    real, syn = frames
    out = wq._contingency(wh, '"t"."real"', '"t"."syn"', [("segment", "region")], KINDS)
    score, cramer = out[("segment", "region")]
    r = real.fillna({"region": "<null>"})
    s = syn.fillna({"region": "<null>"})
    crosstab = pd.crosstab(r["segment"], r["region"])
    assert cramer == pytest.approx(association(crosstab.to_numpy(), method="cramer"), abs=1e-9)
    jr = r.groupby(["segment", "region"]).size() / len(r)
    js = s.groupby(["segment", "region"]).size() / len(s)
    assert score == pytest.approx(1 - 0.5 * jr.subtract(js, fill_value=0).abs().sum(), abs=1e-12)


def test_pairs_in_small_batches_give_the_same_report(wh, monkeypatch):
    """Wide tables are scored PAIR_BATCH column pairs per query: the batching changes nothing."""
    whole = wq.quality_report(wh, "t.real", "t.syn", KINDS)
    monkeypatch.setattr(wq, "PAIR_BATCH", 1)
    batched = wq.quality_report(wh, "t.real", "t.syn", KINDS)
    strip = [{k: v for k, v in d.items() if k != "score"} for d in whole.details]
    assert [{k: v for k, v in d.items() if k != "score"} for d in batched.details] == strip
    for a, b in zip(batched.details, whole.details, strict=True):
        assert a["score"] == pytest.approx(b["score"], rel=1e-12, nan_ok=True)
    assert batched.score == pytest.approx(whole.score, rel=1e-12)


def test_identical_tables_score_one(wh):
    report = wq.quality_report(wh, "t.real", "t.real", KINDS)
    assert report.score == pytest.approx(1.0)
    assert all(d["score"] == pytest.approx(1.0) for d in report.details if d["counted"])


def test_utility_tstr_vs_trtr(frames):
    real, _ = frames
    train, hold = real.iloc[:1000], real.iloc[1000:]
    same = q.utility(train, hold, train, KINDS, "flag")
    assert same["tstr_auc"] == pytest.approx(same["trtr_auc"])
    assert same["trtr_auc"] > 0.8
    noise = train.assign(flag=np.random.default_rng(0).permutation(train["flag"].to_numpy()))
    assert q.utility(train, hold, noise, KINDS, "flag")["tstr_auc"] < 0.65


def test_privacy_dcr_and_exact_copies(frames):
    real, syn = frames
    train, hold = real.iloc[:1000], real.iloc[1000:]
    copies = q.privacy(train, hold, train.iloc[:300], KINDS)
    assert copies["exact_copy_share_synthetic"] == 1.0
    assert copies["dcr_synthetic_median"] == 0.0
    assert copies["dcr_holdout_median"] > 0
    # one category mismatch is distance 1; one numeric at the far end of the range is 1
    one = train.iloc[:1].copy()
    one["segment"] = "other"
    [d] = q.distances_to_closest(train, [one], KINDS)
    assert d[0] == pytest.approx(np.sqrt(0.5))  # an unseen category: one side of the one-hot
    mixed = pd.concat([train.iloc[:50], syn.iloc[:50]])
    keep = q.privacy_filter(train, hold, mixed, KINDS)
    assert not keep[:50].any() and keep[50:].mean() > 0.8


@pytest.mark.parametrize("threshold", [True, False])
def test_in_memory_estimator_matches_the_sql_report(wh, frames, threshold):
    kwargs = {} if threshold else {"correlation_threshold": 0, "association_threshold": 0}
    sql = wq.quality_report(wh, "t.real", "t.syn", KINDS, **kwargs)
    est = q.QualityEstimator(frames[0], KINDS, **kwargs).score(frames[1])
    assert est["score"] == pytest.approx(sql.score, abs=1e-9)
    assert est["column_shapes"] == pytest.approx(sql.column_shapes, abs=1e-9)
    assert est["column_pair_trends"] == pytest.approx(sql.column_pair_trends, abs=1e-9)
