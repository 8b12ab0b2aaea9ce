"""CLV benchmark: pyprofile's BG/NBD + Gamma-Gamma against lifetimes on the real CDNOW data.

Both libraries ship with the repository's dev dependencies; the data are the CDNOW sample
(2,357 customers) and master (23,570 customers) files inside the ``lifetimes`` package.
For each: fit time (median of repeats), fitted parameters, and in a calibration/holdout
split (calibration to 1997-09-30, holdout to 1998-06-30) the customer-level error of the
predicted holdout purchases (MAE, RMSE) and the error of the total. Also times scoring
100,000 customers in Python and through the generated DuckDB macros.

    nice -n 10 python benchmarks/bench_clv.py
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import lifetimes  # noqa: E402
from lifetimes.utils import (  # noqa: E402
    calibration_and_holdout_data,
    summary_data_from_transaction_data,
)

from pyprofile.models.clv import BGNBD, GammaGamma, clv  # noqa: E402
from pyprofile.warehouse import Warehouse  # noqa: E402
from pyprofile.warehouse.scoring_sql import (  # noqa: E402
    clv_sql,
    expected_purchases_sql,
    expected_value_sql,
    p_alive_sql,
)

REPEATS = 5


def load(name: str) -> pd.DataFrame:
    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", name)
    tx = pd.read_csv(
        path, sep=r"\s+", header=None, names=["customer_id", "id", "date", "quantity", "amount"]
    )
    if name == "CDNOW_master.txt":  # a header line and no id column
        tx = pd.read_csv(
            path, sep=r"\s+", skiprows=1, names=["customer_id", "date", "quantity", "amount"]
        )
    tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    return tx


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def fit_comparison(tx: pd.DataFrame) -> dict:
    s = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", freq="D"
    )
    f, r, T, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]  # what Gamma-Gamma can fit
    t_bg_ours, bg = timed(lambda: BGNBD().fit(f, r, T))
    t_bg_ref, ref = timed(lambda: lifetimes.BetaGeoFitter().fit(f, r, T))
    t_gg_ours, gg = timed(lambda: GammaGamma().fit(f, m))
    t_gg_ref, gref = timed(
        lambda: lifetimes.GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    )
    rel = {k: bg.params_[k] / ref.params_[k] - 1.0 for k in bg.params_}
    rel.update({k: gg.params_[k] / gref.params_[k] - 1.0 for k in gg.params_})
    ll_ours = bg.log_likelihood(f, r, T).sum()
    at_ref = BGNBD()
    at_ref.params_ = ref.params_.to_dict()
    ll_ref = at_ref.log_likelihood(f, r, T).sum()
    return {
        "customers": len(s),
        "bg_fit_s": (t_bg_ours, t_bg_ref),
        "gg_fit_s": (t_gg_ours, t_gg_ref),
        "params": ({**bg.params_, **gg.params_}, {**ref.params_, **gref.params_}),
        "max_rel_param_diff": max(abs(v) for v in rel.values()),
        "loglik": (ll_ours, ll_ref),
    }


def holdout_comparison(tx: pd.DataFrame) -> dict:
    cal = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col="amount",
        freq="D",
    )
    f, r, T = cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]
    horizon = float(cal["duration_holdout"].iloc[0])
    actual = cal["frequency_holdout"].to_numpy()
    ours = BGNBD().fit(f, r, T).expected_purchases(horizon, f, r, T)
    ref = lifetimes.BetaGeoFitter().fit(f, r, T)
    theirs = ref.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T).to_numpy()
    naive = f.to_numpy() / np.maximum(T.to_numpy(), 1.0) * horizon  # calibration-period rate

    def errors(pred):
        return {
            "mae": float(np.mean(np.abs(pred - actual))),
            "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
            "total_rel_err": float(pred.sum() / actual.sum() - 1.0),
        }

    return {"ours": errors(ours), "lifetimes": errors(theirs), "naive_rate": errors(naive)}


def scoring_speed(bg: BGNBD, gg: GammaGamma, n: int = 100_000) -> dict:
    rng = np.random.default_rng(0)
    T = rng.integers(0, 540, n).astype(float)
    x = rng.poisson(1.5, n).astype(float)
    rec = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    m = np.where(x > 0, rng.gamma(2.0, 15.0, n), 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": rec, "T": T, "monetary_value": m})
    t_py, py = timed(lambda: clv(bg, gg, x, rec, T, m), repeats=1)
    wh = Warehouse.open(":memory:")
    wh.write("features.f", frame)
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
    t_sql, sql = timed(
        lambda: (
            wh.query(
                'select ml.clv_12m(frequency, recency, "T", monetary_value) as c from features.f'
            )
            .column("c")
            .to_numpy()
        ),
        repeats=1,
    )
    t_pa, _ = timed(
        lambda: wh.query('select ml.p_alive(frequency, recency, "T") as c from features.f'),
        repeats=1,
    )
    return {
        "n": n,
        "clv_python_s": t_py,
        "clv_sql_s": t_sql,
        "p_alive_sql_s": t_pa,
        "max_abs_diff": float(np.max(np.abs(sql - py))),
    }


def main() -> None:
    print(f"lifetimes {lifetimes.__version__}; median of {REPEATS} fits\n")
    bg = gg = None
    for name in ("CDNOW_sample.txt", "CDNOW_master.txt"):
        tx = load(name)
        fit = fit_comparison(tx)
        hold = holdout_comparison(tx)
        ours, theirs = fit["params"]
        print(f"## {name}: {fit['customers']} customers, {len(tx)} transactions")
        print("| parameter | pyprofile | lifetimes | rel. diff |")
        print("|---|---|---|---|")
        for k in ours:
            print(f"| {k} | {ours[k]:.6g} | {theirs[k]:.6g} | {ours[k] / theirs[k] - 1:+.2e} |")
        ll_o, ll_r = fit["loglik"]
        print(f"\nBG/NBD log-likelihood: pyprofile {ll_o:.4f}, lifetimes {ll_r:.4f}")
        print("| fit time (s) | pyprofile | lifetimes |")
        print("|---|---|---|")
        print(f"| BG/NBD | {fit['bg_fit_s'][0]:.4f} | {fit['bg_fit_s'][1]:.4f} |")
        print(f"| Gamma-Gamma | {fit['gg_fit_s'][0]:.4f} | {fit['gg_fit_s'][1]:.4f} |")
        print("\nholdout purchases per customer (calibration to 1997-09-30, holdout to 1998-06-30)")
        print("| predictor | MAE | RMSE | total rel. error |")
        print("|---|---|---|---|")
        for key, e in hold.items():
            print(f"| {key} | {e['mae']:.5f} | {e['rmse']:.5f} | {e['total_rel_err']:+.4f} |")
        print()
        if name == "CDNOW_sample.txt":
            s = summary_data_from_transaction_data(
                tx, "customer_id", "date", monetary_value_col="amount", freq="D"
            )
            bg = BGNBD().fit(s["frequency"], s["recency"], s["T"])
            gg = GammaGamma().fit(s["frequency"], s["monetary_value"])
    speed = scoring_speed(bg, gg)
    print(f"## scoring {speed['n']} synthetic customers (12-month CLV, CDNOW-sample fit)")
    print(
        f"python clv(): {speed['clv_python_s']:.3f} s; DuckDB ml.clv_12m macro: "
        f"{speed['clv_sql_s']:.3f} s; ml.p_alive macro: {speed['p_alive_sql_s']:.3f} s; "
        f"max |SQL - Python| = {speed['max_abs_diff']:.2e}"
    )


if __name__ == "__main__":
    main()
