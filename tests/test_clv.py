"""BG/NBD and Gamma-Gamma: agreement with lifetimes on CDNOW, parameter recovery, SQL = Python."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from pyprofile.errors import InputError, NotFittedError
from pyprofile.models.clv import BGNBD, GammaGamma, clv
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.scoring_sql import (
    clv_sql,
    expected_purchases_sql,
    expected_value_sql,
    p_alive_sql,
)

lifetimes = pytest.importorskip("lifetimes")


def cdnow_summary(calibration_end: str | None = None, observation_end: str | None = None):
    """lifetimes' CDNOW sample as a daily lifetimes-style summary (optionally split)."""
    from lifetimes.utils import (
        calibration_and_holdout_data,
        summary_data_from_transaction_data,
    )

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    tx = pd.read_csv(
        path, sep=r"\s+", header=None, names=["customer_id", "id", "date", "quantity", "amount"]
    )
    tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    if calibration_end is None:
        return summary_data_from_transaction_data(
            tx, "customer_id", "date", monetary_value_col="amount", freq="D"
        )
    return calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        calibration_period_end=calibration_end,
        observation_period_end=observation_end,
        monetary_value_col="amount",
        freq="D",
    )


@pytest.fixture(scope="module")
def cdnow():
    return cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow):
    bg = BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    gg = GammaGamma().fit(cdnow["frequency"], cdnow["monetary_value"])
    return bg, gg


def simulate_bgnbd(n, r, alpha, a, b, rng):
    """Draw (frequency, recency, T) from the BG/NBD story with continuous time."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(100.0, 400.0, n)
    freq, rec = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T[i]:
                break
            freq[i] += 1
            rec[i] = t
            if rng.random() < p[i]:  # drops out after this purchase
                break
    return freq, rec, T


# ---------------------------------------------------------------------------- lifetimes parity
def test_bgnbd_params_match_lifetimes_on_cdnow(cdnow, fitted):
    bg, _ = fitted
    ref = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for key in ("r", "alpha", "a", "b"):
        assert bg.params_[key] == pytest.approx(ref.params_[key], rel=0.01)
    # and our optimum is at least as good as lifetimes' one
    ll_ref = bg.log_likelihood(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    other = BGNBD()
    other.params_ = ref.params_.to_dict()
    ll_at_ref = other.log_likelihood(cdnow["frequency"], cdnow["recency"], cdnow["T"]).sum()
    assert ll_ref.sum() >= ll_at_ref - 1e-6
    assert bg.converged_


def test_gamma_gamma_params_match_lifetimes_on_cdnow(cdnow, fitted):
    _, gg = fitted
    rep = cdnow[cdnow["frequency"] > 0]
    ref = lifetimes.GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    for key in ("p", "q", "v"):
        assert gg.params_[key] == pytest.approx(ref.params_[key], rel=0.01)
    assert gg.n_customers_ == len(rep)


def test_predictions_match_lifetimes_formulas(cdnow, fitted):
    bg, gg = fitted
    f, r, T, m = (cdnow[c] for c in ("frequency", "recency", "T", "monetary_value"))
    ref = lifetimes.BetaGeoFitter()
    ref.params_ = pd.Series(bg.params_)
    ref.predict = ref.conditional_expected_number_of_purchases_up_to_time  # set by lifetimes' fit
    np.testing.assert_allclose(
        bg.p_alive(f, r, T), ref.conditional_probability_alive(f, r, T), rtol=1e-10
    )
    for t in (1.0, 30.0, 90.0, 365.0):
        expected = ref.conditional_expected_number_of_purchases_up_to_time(t, f, r, T)
        np.testing.assert_allclose(bg.expected_purchases(t, f, r, T), expected, rtol=1e-9)
    gref = lifetimes.GammaGammaFitter()
    gref.params_ = pd.Series(gg.params_)
    np.testing.assert_allclose(
        gg.expected_value(f, m), gref.conditional_expected_average_profit(f, m), rtol=1e-10
    )
    ours = clv(bg, gg, f, r, T, m, months=12, discount_rate=0.01)
    theirs = gref.customer_lifetime_value(ref, f, r, T, m, time=12, discount_rate=0.01, freq="D")
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_holdout_error_no_worse_than_lifetimes():
    cal = cdnow_summary("1997-09-30", "1998-06-30")
    f, r, T = (cal[c] for c in ("frequency_cal", "recency_cal", "T_cal"))
    horizon = cal["duration_holdout"].iloc[0]
    actual = cal["frequency_holdout"].to_numpy()
    ours = BGNBD().fit(f, r, T).expected_purchases(horizon, f, r, T)
    ref = lifetimes.BetaGeoFitter().fit(f, r, T)
    theirs = ref.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T).to_numpy()
    mae_ours = np.mean(np.abs(ours - actual))
    mae_theirs = np.mean(np.abs(theirs - actual))
    assert mae_ours <= mae_theirs * (1 + 1e-6)
    # sanity: the model beats predicting the calibration-period rate for everybody
    assert mae_ours < np.mean(np.abs(actual - actual.mean())) * 1.2


# ---------------------------------------------------------------------------- recovery
def test_bgnbd_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    truth = {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 3.0}
    f, rec, T = simulate_bgnbd(8000, *truth.values(), rng)
    bg = BGNBD().fit(f, rec, T)
    assert bg.params_["r"] == pytest.approx(truth["r"], rel=0.05)
    assert bg.params_["alpha"] == pytest.approx(truth["alpha"], rel=0.08)
    assert bg.params_["a"] == pytest.approx(truth["a"], rel=0.15)
    assert bg.params_["b"] == pytest.approx(truth["b"], rel=0.15)
    # the MLE is at least as likely as the truth
    at_truth = BGNBD()
    at_truth.params_ = truth
    assert bg.log_likelihood(f, rec, T).sum() >= at_truth.log_likelihood(f, rec, T).sum()


def test_gamma_gamma_recovers_simulated_parameters():
    rng = np.random.default_rng(3)
    p, q, v = 6.0, 4.0, 15.0
    n = 6000
    freq = rng.integers(1, 12, n).astype(float)
    nu = rng.gamma(q, 1.0 / v, n)  # per-customer rate of the spend distribution
    spend = np.array([rng.gamma(p, 1.0 / nu[i], int(k)).mean() for i, k in enumerate(freq)])
    gg = GammaGamma().fit(freq, spend)
    assert gg.params_["p"] == pytest.approx(p, rel=0.05)
    assert gg.params_["q"] == pytest.approx(q, rel=0.05)
    assert gg.params_["v"] == pytest.approx(v, rel=0.08)


# ---------------------------------------------------------------------------- SQL = Python
HAND_PARAMS = {
    # 2F1 series constants with a negative Pochhammer argument and lgamma(A) < 0
    "negative_b": {"r": 0.3, "alpha": 10.0, "a": 0.5, "b": 2.0},
    # a > r + 2: the series terms grow polynomially before they decay
    "large_a": {"r": 0.2, "alpha": 5.0, "a": 3.0, "b": 6.0},
}


@pytest.mark.parametrize("which", ["cdnow", *HAND_PARAMS])
def test_sql_macros_equal_python(fitted, which):
    bg, gg = fitted
    if which != "cdnow":
        bg = BGNBD()
        bg.params_ = HAND_PARAMS[which]
    rng = np.random.default_rng(0)
    n = 1500
    T = rng.integers(0, 700, n).astype(float)
    T[:30] = 0.0
    x = rng.poisson(2, n).astype(float)
    x[30:45] = rng.integers(50, 300, 15)
    rec = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    m = np.where(x > 0, rng.gamma(2.0, 20.0, n), 0.0)
    df = pd.DataFrame(
        {"customer_id": np.arange(n), "frequency": x, "recency": rec, "T": T, "monetary_value": m}
    )
    df.loc[7, "frequency"] = np.nan
    wh = Warehouse.open(":memory:")
    wh.write("features.f", df)
    wh.publish_macro("ml.p_alive", ["frequency", "recency", "T"], p_alive_sql(bg))
    wh.publish_macro(
        "ml.expected_purchases",
        ["horizon", "frequency", "recency", "T"],
        expected_purchases_sql(bg),
    )
    wh.publish_macro("ml.expected_value", ["frequency", "monetary_value"], expected_value_sql(gg))
    wh.publish_macro(
        "ml.clv_12m",
        ["frequency", "recency", "T", "monetary_value"],
        clv_sql("ml.expected_purchases", "ml.expected_value"),
    )
    out = wh.query(
        'select ml.p_alive(frequency, recency, "T") as pa, '
        'ml.expected_purchases(90, frequency, recency, "T") as ep, '
        'ml.expected_purchases(0, frequency, recency, "T") as ep0, '
        "ml.expected_value(frequency, monetary_value) as ev, "
        'ml.clv_12m(frequency, recency, "T", monetary_value) as clv '
        "from features.f order by customer_id"
    ).to_pandas()
    f = df["frequency"].to_numpy()
    expected = {
        "pa": bg.p_alive(f, rec, T),
        "ep": bg.expected_purchases(90, f, rec, T),
        "ep0": bg.expected_purchases(0, f, rec, T),
        "ev": gg.expected_value(f, m),
        "clv": clv(bg, gg, f, rec, T, m),
    }
    for name, py in expected.items():
        sql = out[name].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(sql), np.isnan(py)), name
        np.testing.assert_allclose(sql, py, rtol=1e-12, atol=1e-9, equal_nan=True, err_msg=name)
    assert np.isnan(expected["pa"][7]) and expected["ep0"][0] == 0.0
    # the series agrees with lifetimes' scipy.special.hyp2f1 formula where that one is finite
    ref = lifetimes.BetaGeoFitter()
    ref.params_ = pd.Series(bg.params_)
    ok = ~np.isnan(f)
    theirs = ref.conditional_expected_number_of_purchases_up_to_time(90, f[ok], rec[ok], T[ok])
    finite = np.isfinite(theirs)
    assert finite.mean() > 0.95
    np.testing.assert_allclose(expected["ep"][ok][finite], theirs[finite], rtol=1e-7)


# ---------------------------------------------------------------------------- bad input
def test_no_repeat_customers_is_an_input_error():
    with pytest.raises(InputError, match="all 3 customers have frequency 0"):
        BGNBD().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(InputError, match="at least 2 customers with repeat purchases"):
        GammaGamma().fit([0, 0, 1], [0, 0, 5.0])


def test_single_customer_is_an_input_error():
    with pytest.raises(InputError, match="at least 2 customers"):
        BGNBD().fit([3], [10], [20])
    with pytest.raises(InputError, match="at least 2 customers"):
        GammaGamma().fit([3], [10.0])


def test_inconsistent_summaries_are_input_errors():
    with pytest.raises(InputError, match="recency > T"):
        BGNBD().fit([1, 2], [30, 5], [20, 10])
    with pytest.raises(InputError, match="negative"):
        BGNBD().fit([1, -2], [3, 5], [20, 10])
    with pytest.raises(InputError, match="null"):
        BGNBD().fit([1, np.nan], [3, 5], [20, 10])
    with pytest.raises(InputError, match="different lengths"):
        BGNBD().fit([1, 2, 3], [3, 5], [20, 10])
    with pytest.raises(InputError, match="positive monetary_value"):
        GammaGamma().fit([1, 2, 3], [3.0, -5.0, 0.0])
    with pytest.warns(UserWarning, match="1 of 4 repeat customers"):
        gg = GammaGamma().fit([1, 2, 3, 2, 0], [3.0, -5.0, 1.0, 7.0, 0.0])
    assert gg.n_excluded_ == 1 and gg.n_customers_ == 3
    with pytest.raises(InputError, match="same monetary_value"):
        GammaGamma().fit([1, 2, 3], [4.0, 4.0, 4.0])


def test_infinite_mean_spend_is_an_input_error():
    gg = GammaGamma()
    gg.params_ = {"p": 2.0, "q": 0.9, "v": 10.0}
    with pytest.raises(InputError, match="q = 0.9 <= 1"):
        gg.expected_value([1, 2], [10.0, 20.0])


def test_unfitted_models_raise():
    with pytest.raises(NotFittedError):
        BGNBD().p_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        expected_value_sql(GammaGamma())


def test_round_trip_through_registry_format(fitted):
    bg, gg = fitted
    bg2 = BGNBD.from_artifact(bg.to_artifact())
    assert bg2.params_ == bg.params_
    gg2 = GammaGamma.from_artifact(gg.to_artifact())
    assert gg2.params_ == gg.params_
