"""The augmentation benchmark's honesty checks: synthetic rows reach the fitted rows only,
and its calibration error agrees with a direct computation."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_augment.py"
spec = importlib.util.spec_from_file_location("bench_augment", PATH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_synthetic_rows_join_the_fitted_rows_only():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    plain = bench.RealValidation(random_state=3)._split(y)
    model = bench.RealValidation(random_state=3)
    model.n_real = len(y)
    fitted, val, test = model._split(np.concatenate([y, np.ones(50, dtype=int)]))
    np.testing.assert_array_equal(val, plain[1])
    np.testing.assert_array_equal(test, plain[2])
    np.testing.assert_array_equal(fitted, np.concatenate([plain[0], np.arange(400, 450)]))


def test_propensity_model_records_the_synthetic_rows_as_fitted():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.choice(["x", "y"], 600)})
    y = (X.a + rng.normal(size=600) > 2.2).astype(int).to_numpy()
    extra = X[y == 1].sample(40, replace=True, random_state=0)
    model = bench.propensity(X, y, extra, 0)
    real_fitted = len(bench.RealValidation(random_state=0)._split(y)[0])
    assert model.metrics_["n_train"] == real_fitted + 40
    assert model.metrics_["n_validation"] + model.metrics_["n_test"] == 600 - real_fitted


def test_extra_positives_reach_the_ratio():
    y = np.array([0] * 95 + [1] * 5)
    n = bench.extra_positives(y, 0.5)
    assert n == 90
    assert (5 + n) / (100 + n) == 0.5


def test_ece_of_ten_equal_bins():
    y = np.array([0, 1] * 50)
    p = np.repeat(np.linspace(0.05, 0.95, 10), 10)  # 10 bins of 10 rows, observed rate 0.5
    expected = np.mean(np.abs(np.linspace(0.05, 0.95, 10) - 0.5))
    assert abs(bench.ece(y, p, np.ones(100)) - expected) < 1e-12
