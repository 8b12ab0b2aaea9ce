"""Churn reason codes of the gradient-boosting model: occlusion tree by tree vs in full.

    .venv/bin/python benchmarks/bench_reasons.py --db WAREHOUSE [--rows 100000]

Fits the churn model (``PropensityModel(model="gbm")``) on ``features.customer_training`` of a
built warehouse (e.g. one of ``bench_scale.py``'s), then computes every customer's feature
contributions two ways on ``--rows`` rows (the scoring table repeated): the obvious way, scoring
the table once per feature with that feature set to the reference customer's value
(scikit-learn's compiled trees), and ``PropensityModel.contributions``, which re-walks only the
trees that split on a feature and only the rows whose value differs from the reference. Checks
they agree and prints rows/s of each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from pyprofile.models.propensity import PropensityModel
from pyprofile.warehouse import Warehouse


def full_occlusion(model: PropensityModel, rows: pd.DataFrame) -> np.ndarray:
    D = model._design(rows)
    reference = model._reference_row()
    sources = np.array(model._design_sources())
    base = model._raw(D, "gbm")
    out = np.zeros((len(rows), len(model.feature_names_in_)))
    for g, column in enumerate(model.feature_names_in_):
        cols = np.flatnonzero(sources == column)
        occluded = D.copy()
        occluded[:, cols] = reference[cols]
        out[:, g] = base - model._raw(occluded, "gbm")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with Warehouse.open(args.db) as wh:
        training = wh.read("features.customer_training").to_pandas()
        scoring = wh.read("features.customer_features").to_pandas()
    labels = {"churned", "purchased", "spend_in_window", "purchase_days_in_window"}
    skip = {"customer_id", "as_of_date", "cutoff_date", *labels}
    features = [c for c in training.columns if c in scoring.columns and c not in skip]
    model = PropensityModel(model="gbm", columns=features, random_state=0)
    model.fit(training[features], training["churned"].astype("float64"))
    trees = len(model.gbm_arrays_["gbm_tree_sizes"])
    reps = -(-args.rows // len(scoring))
    rows = pd.concat([scoring[features]] * reps, ignore_index=True).head(args.rows)
    t = time.perf_counter()
    expected = full_occlusion(model, rows)
    full = time.perf_counter() - t
    t = time.perf_counter()
    got = model.contributions(rows, model="gbm").to_numpy()
    by_tree = time.perf_counter() - t
    diff = float(np.abs(got - expected).max())
    print(f"{len(rows):,} rows, {len(model.feature_names_in_)} features, {trees} trees")
    print(f"occlusion in full (scikit-learn, one scoring per feature): {full:.1f} s, "
          f"{len(rows) / full:,.0f} rows/s")  # fmt: skip
    print(f"occlusion tree by tree (pyprofile): {by_tree:.1f} s, {len(rows) / by_tree:,.0f} rows/s "
          f"({full / by_tree:.1f}x); largest difference {diff:.2e}")  # fmt: skip
    assert diff < 1e-9


if __name__ == "__main__":
    main()
