"""PropensityModel: metrics vs scikit-learn, calibration, reason codes, SQL = Python, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from pyprofile.errors import InputError, NotFittedError
from pyprofile.models.metrics import average_precision, brier_score, roc_auc, top_decile_lift
from pyprofile.models.propensity import PropensityModel
from pyprofile.models.trees import raw_score, tree_arrays
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.scoring_sql import propensity_sql


def make_customers(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Feature table with nulls, a categorical, a bool, an id and a date; label ``churned``."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60.0, n)
    orders = rng.poisson(3.0, n).astype(float)
    spend = rng.gamma(2.0, 50.0, n)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    visits = rng.poisson(5.0, n).astype(float)
    has_app = rng.random(n) < 0.4
    logit = (
        -1.0
        + 0.02 * recency
        - 0.4 * orders
        + 0.8 * (region == "west")
        - 0.6 * has_app
        + 0.5 * np.sin(visits)  # a little non-linearity for the boosted model
    )
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "as_of_date": pd.Timestamp("2024-01-01").date(),
            "recency_days": recency,
            "order_count": orders,
            "monetary_amount": spend,
            "region": pd.Series(region, dtype=object),
            "days_since_last_visit": visits,
            "has_app": has_app,
            "churned": churned.astype(int),
        }
    )
    frame.loc[rng.random(n) < 0.05, "days_since_last_visit"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = None
    return frame


@pytest.fixture(scope="module")
def data():
    return make_customers()


@pytest.fixture(scope="module")
def fitted(data):
    return PropensityModel(random_state=0).fit(data, "churned")


# ---------------------------------------------------------------------------- metrics
def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.random(2000) < 0.3
    score = np.round(rng.random(2000) + 0.3 * y, 2)  # rounded: many ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert average_precision(y, score) == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )
    prob = np.clip(score, 0, 1)
    assert brier_score(y, prob) == pytest.approx(brier_score_loss(y, prob), abs=1e-12)


def test_top_decile_lift_by_hand():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0] * 2)  # base rate 0.1
    score = np.arange(20.0)[::-1]  # rows 0 and 10 are positives, ranks 1 and 11
    # top ceil(0.1 * 20) = 2 rows are rows 0 and 1: one positive -> rate 0.5 -> lift 5
    assert top_decile_lift(y, score) == pytest.approx(5.0)
    assert np.isnan(top_decile_lift(np.zeros(5), np.arange(5.0)))


# ---------------------------------------------------------------------------- fitting
def test_fit_selects_by_validation_auc_and_reports_honest_metrics(fitted):
    m = fitted.metrics_
    assert m["model"] == max(
        fitted.candidates_, key=lambda k: fitted.candidates_[k]["validation_roc_auc"]
    )
    assert m["roc_auc"] > 0.75 and m["top_decile_lift"] > 1.8
    assert m["n_train"] + m["n_validation"] + m["n_test"] == 3000
    assert set(fitted.candidates_) == {"linear", "gbm"}
    # ids and dates are not features; the label never is
    assert "customer_id" not in fitted.feature_names_in_
    assert "as_of_date" not in fitted.feature_names_in_
    assert "churned" not in fitted.feature_names_in_
    assert {"recency_days", "region", "has_app"} <= set(fitted.feature_names_in_)


def test_predict_proba_shape_and_range(fitted, data):
    proba = fitted.predict_proba(data)
    assert proba.shape == (len(data), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    # arrow input gives the same scores
    import pyarrow as pa

    arrow = pa.Table.from_pandas(data, preserve_index=False)
    np.testing.assert_allclose(fitted.predict_proba(arrow), proba)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_does_not_worsen_brier(data, method):
    # heavy regularisation squeezes the logistic scores: a miscalibrated base model
    model = PropensityModel(model="linear", C=1e-3, calibration=method, random_state=0)
    m = model.fit(data, "churned").metrics_
    assert m["calibration"] == method
    assert m["brier"] < m["brier_uncalibrated"]


def test_auto_calibration_no_worse_than_uncalibrated(fitted):
    for metrics in fitted.candidates_.values():
        assert metrics["brier"] <= metrics["brier_uncalibrated"] + 1e-12


# ---------------------------------------------------------------------------- reason codes
def test_linear_contributions_add_up_to_the_score(fitted, data):
    contrib = fitted.contributions(data.head(200), model="linear")
    z = fitted.decision_function(data.head(200), model="linear")
    np.testing.assert_allclose(contrib.sum(axis=1) + fitted.linear_["intercept"], z, rtol=1e-10)


def test_reason_codes_name_the_strongest_push(fitted, data):
    rows = data.head(300)
    for model in ("linear", "gbm"):
        reasons = fitted.reason_codes(rows, model=model)
        contrib = fitted.contributions(rows, model=model)
        assert list(reasons.columns) == ["reason_1", "reason_2", "reason_3"]
        top = contrib.idxmax(axis=1)
        positive = contrib.max(axis=1) > 0
        first = reasons["reason_1"].str.split("=").str[0]
        assert (first[positive] == top[positive]).all()
        assert reasons["reason_1"][~positive].isna().all()
    # a long-gone west-region customer: recency and the region push churn up
    west = rows[(rows["region"] == "west") & (rows["recency_days"] > 150)].head(1)
    codes = fitted.reason_codes(west, model="linear").iloc[0].tolist()
    assert "recency_days" in codes and "region=west" in codes


def test_gbm_occlusion_of_an_unused_feature_is_zero(data):
    # three stumps: at most three features are split on
    model = PropensityModel(model="gbm", gbm_max_iter=3, gbm_max_leaf_nodes=2, random_state=0)
    model.fit(data, "churned")
    contrib = model.contributions(data.head(100))
    split = ~model.gbm_arrays_["gbm_is_leaf"].astype(bool)
    used = set(model.gbm_arrays_["gbm_feature_idx"][split].tolist())
    sources = np.array(model._design_sources())
    unused = [c for c in contrib.columns if not used & set(np.nonzero(sources == c)[0].tolist())]
    assert len(unused) >= 3
    for name in unused:
        assert np.all(contrib[name] == 0.0)
    assert (contrib.abs().sum() > 0).sum() >= 1  # the split features do move the score


# ---------------------------------------------------------------------------- SQL = Python
@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_churn_score_macro_equals_predict_proba(data, calibration):
    model = PropensityModel(model="linear", calibration=calibration, random_state=0)
    model.fit(data, "churned")
    scoring = data.drop(columns=["churned"]).copy()
    scoring.loc[0, "region"] = "atlantis"  # unseen level
    scoring.loc[1, "recency_days"] = np.nan  # null never seen in training
    scoring.loc[2, "recency_days"] = 1e6  # clipped
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", scoring)
    params, body = propensity_sql(model)
    wh.publish_macro("ml.churn_score", params, body)
    args = ", ".join(f'"{p}"' for p in params)
    sql = wh.query(
        f"select ml.churn_score({args}) as p from features.customer_features order by customer_id"
    )
    sql_p = sql.column("p").to_numpy()
    py_p = model.predict_proba(scoring, model="linear")[:, 1]
    np.testing.assert_allclose(sql_p, py_p, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(sql_p))


@pytest.mark.parametrize("calibration", ["none", "isotonic"])
def test_boosted_trees_in_sql_equal_predict_proba_on_every_row(data, calibration):
    model = PropensityModel(model="gbm", gbm_max_iter=40, calibration=calibration)
    model.fit(data, "churned")
    scoring = data.drop(columns=["churned"]).copy()
    scoring.loc[0, "region"] = "atlantis"  # unseen level
    scoring.loc[1, "recency_days"] = np.nan  # null never seen in training
    params, body = propensity_sql(model)  # the kept model: the trees
    wh = Warehouse.open(":memory:")
    wh.write("features.f", scoring)
    wh.publish_macro("ml.churn_score", params, body)
    args = ", ".join(f'"{p}"' for p in params)
    sql = wh.query(f"select ml.churn_score({args}) as p from features.f order by customer_id")
    expected = model.predict_proba(scoring.sort_values("customer_id"))[:, 1]
    np.testing.assert_allclose(sql.column("p").to_numpy(), expected, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="'forest' was not fitted"):
        propensity_sql(model, "forest")


def test_a_gbm_only_model_still_exports_its_linear_baseline(data):
    model = PropensityModel(model="gbm", gbm_max_iter=20, random_state=0).fit(data, "churned")
    assert model.best_model_ == "gbm" and set(model.candidates_) == {"linear", "gbm"}
    params, body = propensity_sql(model, "linear")
    assert params == model.feature_names_in_
    wh = Warehouse.open(":memory:")
    wh.write("features.f", data.head(50))
    wh.publish_macro("ml.churn_score", params, body)
    args = ", ".join(f'"{p}"' for p in params)
    sql = wh.query(f"select ml.churn_score({args}) as p from features.f").column("p").to_numpy()
    linear = model.predict_proba(data.head(50), model="linear")[:, 1]
    np.testing.assert_allclose(sql, linear, atol=1e-9)
    linear_only = PropensityModel(model="linear", random_state=0).fit(data, "churned")
    assert set(linear_only.candidates_) == {"linear"} and linear_only.gbm_arrays_ is None


# ---------------------------------------------------------------------------- persistence
def test_artifact_round_trip_reproduces_scores(fitted, data):
    clone = PropensityModel.from_artifact(fitted.to_artifact())
    assert getattr(clone, "_gbm", None) is None  # the clone walks the stored trees in numpy
    for model in ("linear", "gbm"):
        np.testing.assert_allclose(
            clone.predict_proba(data, model=model),
            fitted.predict_proba(data, model=model),
            rtol=1e-12,
            atol=1e-15,
        )
    np.testing.assert_allclose(
        clone.contributions(data.head(50), model="gbm"),
        fitted.contributions(data.head(50), model="gbm"),
        atol=1e-12,
    )
    assert clone.metrics_ == fitted.metrics_


def test_numpy_tree_walk_equals_scikit_learn(fitted, data):
    from pyprofile.models.preprocessing import apply_preprocessing

    D = apply_preprocessing(data, fitted.spec_)
    gbm = fitted._gbm  # the scikit-learn estimator kept after fit
    np.testing.assert_allclose(raw_score(tree_arrays(gbm), D), gbm.decision_function(D), rtol=1e-12)


# ---------------------------------------------------------------------------- bad input
def test_all_churned_is_an_input_error(data):
    with pytest.raises(InputError, match="single class: all 3000 rows are 1"):
        PropensityModel().fit(data.assign(churned=1), "churned")


def test_too_few_of_a_class_is_an_input_error(data):
    y = np.zeros(len(data), dtype=int)
    y[:3] = 1
    with pytest.raises(InputError, match="3 positive"):
        PropensityModel().fit(data.drop(columns=["churned"]), y)


def test_bad_labels_are_input_errors(data):
    with pytest.raises(InputError, match="no label column"):
        PropensityModel().fit(data, "purchased")
    with pytest.raises(InputError, match="null"):
        PropensityModel().fit(data.drop(columns=["churned"]), data["churned"].where(data.index > 0))
    with pytest.raises(InputError, match="0/1"):
        PropensityModel().fit(data.drop(columns=["churned"]), data["churned"] * 2)
    with pytest.raises(InputError, match="no usable feature"):
        PropensityModel().fit(data[["customer_id", "churned"]], "churned")


def test_smallest_accepted_class_still_fits():
    frame = make_customers(300, seed=5).drop(columns=["churned"])
    y = np.zeros(300, dtype=int)
    y[np.argsort(-frame["recency_days"].to_numpy())[:10]] = 1  # 10 long-gone customers churn
    model = PropensityModel(random_state=0).fit(frame, y)
    assert model.metrics_["n_test"] == 60
    assert model.predict_proba(frame)[:, 1][y == 1].mean() > model.predict_proba(frame)[:, 1].mean()


def test_unfitted_and_bad_params():
    with pytest.raises(NotFittedError):
        PropensityModel().predict_proba(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InputError, match="model must be"):
        PropensityModel(model="forest").fit(make_customers(200), "churned")


def test_training_is_capped_by_a_stratified_sample(data):
    capped = PropensityModel(model="linear", max_rows=600, random_state=0).fit(data, "churned")
    metrics = capped.metrics_
    assert metrics["n_train"] + metrics["n_validation"] + metrics["n_test"] == 600
    full_rate = data["churned"].mean()
    assert metrics["base_rate"] == pytest.approx(full_rate, abs=0.02)  # proportions kept
    assert len(capped.predict_proba(data)) == len(data)  # scoring covers every row


def test_sample_rows_keeps_every_stratum_share():
    from pyprofile.models.data import sample_rows

    strata = np.array(["a"] * 700 + ["b"] * 290 + ["c"] * 10)
    assert sample_rows(len(strata), 1000, 0, strata) is None
    keep = sample_rows(len(strata), 100, 0, strata)
    assert len(keep) == 100 and len(np.unique(keep)) == 100 and (np.diff(keep) > 0).all()
    counts = pd.Series(strata[keep]).value_counts().to_dict()
    assert counts == {"a": 70, "b": 29, "c": 1}
    np.testing.assert_array_equal(keep, sample_rows(len(strata), 100, 0, strata))
    assert not np.array_equal(keep, sample_rows(len(strata), 100, 1, strata))
    plain = sample_rows(50, 20, 0)
    assert len(plain) == 20 and len(np.unique(plain)) == 20 and plain.max() < 50


def test_gbm_contributions_are_occlusion_of_the_scored_model(fitted, data):
    """Each feature's contribution is the raw score minus the raw score with that feature set
    to the reference customer's value (computed tree by tree; checked against scoring the
    occluded rows in full with scikit-learn's own trees)."""
    rows = data.head(400)
    contrib = fitted.contributions(rows, model="gbm")
    D = fitted._design(rows)
    reference = fitted._reference_row()
    sources = np.array(fitted._design_sources())
    base = fitted._raw(D, "gbm")
    for column in contrib.columns:
        cols = np.flatnonzero(sources == column)
        occluded = D.copy()
        occluded[:, cols] = reference[cols]
        np.testing.assert_allclose(
            contrib[column], base - fitted._raw(occluded, "gbm"), atol=1e-9, err_msg=column
        )
    assert (contrib.abs().sum() > 0).sum() >= 3  # several features do push
