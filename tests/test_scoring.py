"""run_scoring on a small generated warehouse: scores table, registry, macros, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyprofile.errors import InputError, WarehouseError
from pyprofile.flows.scoring import METRIC_COLUMNS, SCORE_COLUMNS, metrics_rows, run_scoring
from pyprofile.models.clv import BGNBD
from pyprofile.models.dictionary import value
from pyprofile.models.propensity import PropensityModel
from pyprofile.warehouse import Warehouse, registry

AS_OF = 730
HORIZON = 90


def simulate_orders(n: int, seed: int) -> pd.DataFrame:
    """Orders of BG/NBD customers (integer days 0..AS_OF) with a region that shifts the rate."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "west"], n)
    lam = rng.gamma(0.8, 1.0 / 25.0, n) * np.where(region == "west", 0.5, 1.0)
    p = rng.beta(1.0, 4.0, n)
    birth = rng.integers(0, AS_OF - 30, n)
    rows = []
    for i in range(n):
        t = float(birth[i])
        while t <= AS_OF:
            rows.append((i, int(t), float(rng.gamma(3.0, 15.0))))
            if rng.random() < p[i]:
                break
            t += rng.exponential(1.0 / lam[i])
    orders = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    customers = pd.DataFrame(
        {"customer_id": np.arange(n), "region": region, "age": rng.integers(18, 80, n)}
    )
    customers["age"] = customers["age"].astype("float64").where(rng.random(n) > 0.1)
    return orders, customers


def features_at(orders: pd.DataFrame, customers: pd.DataFrame, day: int) -> pd.DataFrame:
    """A miniature ``customer_features`` as of ``day`` (lifetimes-style columns included)."""
    seen = orders[orders["day"] <= day]
    daily = seen.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    g = daily.groupby("customer_id")
    first, last, n_days = g["day"].min(), g["day"].max(), g["day"].count()
    total = g["amount"].sum()
    first_amount = daily.sort_values("day").groupby("customer_id")["amount"].first()
    feats = pd.DataFrame(
        {
            "frequency": n_days - 1,
            "recency": last - first,
            "T": day - first,
            "monetary_value": ((total - first_amount) / (n_days - 1).where(n_days > 1)).fillna(0.0),
            "recency_days": day - last,
            "order_count": n_days,
            "monetary_amount": total,
        }
    ).reset_index()
    out = customers.merge(feats, on="customer_id", how="inner")
    out.insert(1, "as_of_date", pd.Timestamp("2024-01-01") + pd.Timedelta(days=day))
    return out


@pytest.fixture(scope="module")
def warehouse():
    orders, customers = simulate_orders(1200, seed=11)
    cutoff = AS_OF - HORIZON
    training = features_at(orders, customers, cutoff)
    window = orders[(orders["day"] > cutoff) & (orders["day"] <= AS_OF)]
    spend = window.groupby("customer_id")["amount"].sum()
    training["spend_in_window"] = training["customer_id"].map(spend).fillna(0.0)
    days = window.groupby("customer_id")["day"].nunique()
    training["purchase_days_in_window"] = training["customer_id"].map(days).fillna(0).astype(int)
    training["purchased"] = training["spend_in_window"] > 0
    training["churned"] = ~training["purchased"]
    scoring = features_at(orders, customers, AS_OF)
    wh = Warehouse.open(":memory:")
    wh.write_many({"features.customer_training": training, "features.customer_features": scoring})
    summary = run_scoring(wh, horizon_days=HORIZON)
    return wh, summary, training, scoring


def test_scores_table_has_one_row_per_customer(warehouse):
    wh, summary, _, scoring = warehouse
    scores = wh.read("ml.customer_scores").to_pandas()
    assert list(scores.columns) == ["customer_id", *SCORE_COLUMNS, "as_of_date"]
    assert summary["rows"] == len(scores) == len(scoring)
    assert scores["customer_id"].is_unique
    for col in ("churn_probability", "purchase_probability", "p_alive"):
        assert scores[col].between(0.0, 1.0).all(), col
    assert (scores["expected_purchases_90d"] >= 0).all() and (scores["clv_12m"] >= 0).all()
    assert (scores["model_version"] == summary["model_version"]).all()
    # one model of one label: purchase is exactly the complement of churn, for every customer
    total = scores["churn_probability"] + scores["purchase_probability"]
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-15)
    # scores discriminate on the labelled window (in-sample sanity, not the honest metric)
    assert summary["metrics"][0]["roc_auc"] > 0.65


def test_scores_do_not_depend_on_the_batch_size(warehouse, monkeypatch):
    """The scoring table is streamed: batches much smaller than the table (with customers
    whose lifetimes summary is missing in some of them) give exactly the same scores."""
    import pyprofile.flows.scoring as scoring_flow

    wh, _, training, scoring = warehouse
    scoring = scoring.copy()
    scoring.loc[scoring.index[::7], ["frequency", "recency", "T"]] = np.nan
    small = Warehouse.open(":memory:")
    small.write_many(
        {"features.customer_training": training, "features.customer_features": scoring}
    )
    columns = ["customer_id", "churn_probability", "p_alive", "expected_avg_order_value", "clv_12m"]

    def scores():
        run_scoring(small, horizon_days=HORIZON)
        frame = small.read("ml.customer_scores").to_pandas()[columns]
        return frame.sort_values("customer_id").reset_index(drop=True)

    whole = scores()
    monkeypatch.setattr(scoring_flow, "SCORING_BATCH", 97)
    batched = scores()
    assert whole["clv_12m"].isna().sum() >= len(scoring) // 7
    pd.testing.assert_frame_equal(whole, batched)


def test_models_and_metrics_are_registered(warehouse):
    wh, summary, _, _ = warehouse
    names = {row["name"] for row in wh.query("select name from ml.model_registry").to_pylist()}
    assert {"churn", "bgnbd", "gamma_gamma", "customer_scores"} <= names
    assert "purchase" not in names  # no second model of the same question
    record = registry.load_model(wh, "churn", summary["versions"]["churn"])
    assert record.metrics["roc_auc"] == pytest.approx(summary["metrics"][0]["roc_auc"])
    bundle = registry.load_model(wh, "customer_scores", summary["model_version"])
    assert bundle.params["components"] == summary["versions"]
    assert [r["model"] for r in summary["metrics"]] == ["churn", "clv"]
    assert summary["skipped"] == {}
    assert all(len(cells) == len(METRIC_COLUMNS) for cells in metrics_rows(summary))
    assert summary["clv_holdout"]["spend_mae"] < summary["clv_holdout"]["spend_mae_baseline"]
    gg = registry.load_model(wh, "gamma_gamma").metrics
    # simulated spend is Gamma(3, 15) per order: both means close to 45
    assert gg["observed_mean"] == pytest.approx(45.0, rel=0.1)
    assert gg["population_mean"] == pytest.approx(gg["observed_mean"], rel=0.15)


def test_macros_reproduce_the_scores(warehouse):
    wh, summary, _, scoring = warehouse
    got = wh.query(
        'select s.customer_id, ml.p_alive(f.frequency, f.recency, f."T") as pa, '
        's.p_alive, ml.expected_purchases(90, f.frequency, f.recency, f."T") as ep, '
        's.expected_purchases_90d, ml.clv_12m(f.frequency, f.recency, f."T", f.monetary_value) '
        "as clv, s.clv_12m from ml.customer_scores s join features.customer_features f "
        "using (customer_id) order by customer_id"
    ).to_pandas()
    np.testing.assert_allclose(got["pa"], got["p_alive"], atol=1e-9)
    np.testing.assert_allclose(got["ep"], got["expected_purchases_90d"], atol=1e-9)
    np.testing.assert_allclose(got["clv"], got["clv_12m"], atol=1e-9)
    # churn_score and purchase_score = the stored probabilities, whichever model was kept
    params = summary["macros"]["ml.churn_score"]
    args = ", ".join(f'f."{p}"' for p in params)
    sql = wh.query(
        f"select s.churn_probability, s.purchase_probability, ml.churn_score({args}) as churn, "
        f"ml.purchase_score({args}) as purchase from ml.customer_scores s "
        "join features.customer_features f using (customer_id) order by customer_id"
    ).to_pandas()
    assert len(sql) == len(scoring)
    np.testing.assert_allclose(sql["churn"], sql["churn_probability"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(sql["purchase"], sql["purchase_probability"], rtol=0, atol=1e-9)
    record = registry.load_model(wh, "churn", summary["versions"]["churn"])
    model = PropensityModel.from_artifact(record.artifact)
    ordered = scoring.sort_values("customer_id")
    np.testing.assert_allclose(sql["churn"], model.predict_proba(ordered)[:, 1], atol=1e-9)
    # and the registered BG/NBD is the one that scored
    bg = BGNBD.from_artifact(registry.load_model(wh, "bgnbd").artifact)
    assert bg.params_ == pytest.approx(
        {k: summary["clv_params"][k] for k in ("r", "alpha", "a", "b")}
    )


def test_rerun_is_idempotent(warehouse):
    wh, summary, _, _ = warehouse
    again = run_scoring(wh, horizon_days=HORIZON, output_table="ml.scores_again")
    assert again["model_version"] == summary["model_version"]
    assert again["versions"] == summary["versions"]
    assert again["rows"] == summary["rows"]
    order = "order by customer_id"
    first = wh.query(f"select * from ml.customer_scores {order}").to_pandas()
    second = wh.query(f"select * from ml.scores_again {order}").to_pandas()
    pd.testing.assert_frame_equal(first, second)


def test_linear_only_scores_equal_the_macro(warehouse):
    _, _, training, scoring = warehouse
    wh = Warehouse.open(":memory:")
    wh.write_many({"features.customer_training": training, "features.customer_features": scoring})
    summary = run_scoring(wh, propensity_model="linear")
    assert [r["estimator"] for r in summary["metrics"][:1]] == ["linear"]
    args = ", ".join(f'"{p}"' for p in summary["macros"]["ml.purchase_score"])
    got = wh.query(
        f"select s.purchase_probability, ml.purchase_score({args}) as p "
        "from ml.customer_scores s join features.customer_features using (customer_id)"
    ).to_pandas()
    np.testing.assert_allclose(got["p"], got["purchase_probability"], atol=1e-9)


def test_a_part_that_cannot_be_fitted_is_skipped_with_its_reason(warehouse):
    _, _, training, scoring = warehouse
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", scoring)
    no_training = run_scoring(wh)  # lifetime value needs no training table
    assert "features.customer_training does not exist" in no_training["skipped"]["propensity"]
    scores = wh.read("ml.customer_scores").to_pandas()
    assert scores["churn_probability"].isna().all() and scores["clv_12m"].notna().all()
    wh.write("features.customer_training", training)
    one_off = scoring.assign(frequency=0, recency=0, monetary_value=0.0)
    wh.write("features.customer_features", one_off)
    no_repeat = run_scoring(wh)  # no repeat buyer: CLV is skipped, churn still scored
    assert "frequency 0" in no_repeat["skipped"]["clv"]
    scores = wh.read("ml.customer_scores").to_pandas()
    assert scores["clv_12m"].isna().all() and scores["churn_probability"].notna().all()
    functions = set(wh.query("select function_name from duckdb_functions()").column(0).to_pylist())
    assert "clv_12m" not in functions and "p_alive" not in functions  # none left from before
    assert {"churn_score", "purchase_score"} <= functions


def test_bad_inputs_name_the_table(warehouse):
    _, _, training, scoring = warehouse
    wh = Warehouse.open(":memory:")
    with pytest.raises(WarehouseError, match="features.customer_features"):
        run_scoring(wh)
    wh.write("features.customer_features", scoring.assign(frequency=0, recency=0))
    wh.write("features.customer_training", training.assign(churned=True, purchased=False))
    with pytest.raises(InputError, match=r"features.customer_training .*single class.*frequency 0"):
        run_scoring(wh)
    wh.write("features.customer_training", training.head(5))
    wh.write("features.customer_features", scoring.head(1))
    with pytest.raises(InputError, match="at least 2 customers"):
        run_scoring(wh)


def test_churn_reasons_are_plain_words_with_the_customers_own_values(warehouse):
    wh, _, _, scoring = warehouse
    scores = wh.read("ml.customer_scores").to_pandas().merge(scoring, on="customer_id")
    reasons = scores[["churn_reason_1", "churn_reason_2", "churn_reason_3"]].stack()
    assert len(reasons) > 0
    assert reasons.str.endswith("→ raises churn risk").all()
    assert not reasons.str.contains(r"[a-z]+_[a-z]+", regex=True).any()  # no column names
    recency = scores[scores["churn_reason_1"].str.startswith("last purchase", na=False)]
    assert len(recency) > 0
    for text, days in zip(recency["churn_reason_1"], recency["recency_days"], strict=True):
        assert text.startswith(f"last purchase {value('days', days)} ago (typical: ")


def test_reasons_in_words_equal_wording_each_row_alone():
    """Each distinct (code, value) is worded once: the same text as wording every row."""
    from types import SimpleNamespace

    from pyprofile.flows.scoring import _in_words
    from pyprofile.models.dictionary import reason

    rng = np.random.default_rng(0)
    n = 500
    X = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 40, n).astype(float),
            "monetary_total": rng.gamma(2.0, 50.0, n).round(2),
        }
    )
    X.loc[rng.random(n) < 0.1, "recency_days"] = np.nan
    codes = pd.Series(
        rng.choice(["recency_days", "monetary_total", "region=north", None], n), dtype=object
    )
    model = SimpleNamespace(reference_={"recency_days": 9.0, "monetary_total": 120.0})
    got = _in_words(model, X, codes, "$")
    for i, code in enumerate(codes):
        if code is None:
            assert got[i] is None
            continue
        column, eq, level = code.partition("=")
        said = (
            reason(column, None, None, level=level)
            if eq
            else reason(column, X[column].iloc[i], model.reference_[column], currency="$")
        )
        assert got[i] == f"{said} → raises churn risk"


def test_bgnbd_holdout_calibration_per_frequency(warehouse):
    _, summary, training, _ = warehouse
    table = pd.DataFrame(summary["clv_holdout"]["calibration_table"])
    bucket = training["frequency"].clip(upper=6).astype(int).astype(str)
    bucket = bucket.where(bucket != "6", "6+")
    actual = training.groupby(bucket)["purchase_days_in_window"].mean()
    for row in table.itertuples():
        assert row.actual == pytest.approx(actual[row.frequency])
        assert row.customers == (bucket == row.frequency).sum()
    assert table["customers"].sum() == len(training)
    # BG/NBD data: predicted and actual agree on average (the model holds here)
    weights = table["customers"] / table["customers"].sum()
    assert abs((weights * (table["predicted"] - table["actual"])).sum()) < 0.15


def test_gamma_gamma_independence_is_checked(warehouse):
    _, _, training, scoring = warehouse
    linked = scoring.assign(monetary_value=scoring["monetary_value"] * (1 + scoring["frequency"]))
    wh = Warehouse.open(":memory:")
    wh.write_many({"features.customer_training": training, "features.customer_features": linked})
    summary = run_scoring(wh, propensity_model="linear")
    assert any("correlate at r = " in note for note in summary["diagnostics"])
    record = registry.load_model(wh, "gamma_gamma").metrics
    x = linked.loc[linked["frequency"] > 0]
    r = np.corrcoef(x["frequency"], x["monetary_value"])[0, 1]
    assert record["frequency_monetary_correlation"] == pytest.approx(r)
