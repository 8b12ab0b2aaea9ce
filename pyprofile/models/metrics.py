"""Classification metrics, computed here so that every report of them is the same number.

ROC AUC (Mann-Whitney U), PR AUC (average precision), Brier score, top-decile lift, the lift
table by score bin and the calibration table (mean predicted vs observed rate per bin).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from pyprofile.errors import InputError


def binary_labels(y: Any, name: str = "label") -> np.ndarray:
    """0/1 int array from bools, 0/1 numbers (nullable dtypes too); nulls are an InputError."""
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    n_null = int(series.isna().sum())
    if n_null:
        raise InputError(f"label {name} has {n_null} null value(s) in {len(series)} rows")
    try:
        values = series.astype("float64").to_numpy()
    except (TypeError, ValueError) as exc:
        raise InputError(f"label {name} must be 0/1 or boolean: {exc}") from exc
    odd = int(np.sum((values != 0) & (values != 1)))
    if odd:
        raise InputError(f"label {name} must be 0/1 or boolean: {odd} of {len(values)} are not")
    return values.astype(np.int64)


def roc_auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: Any, score: Any) -> float:
    """PR AUC as average precision: sum over thresholds of (recall step) x precision."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(score, dtype=float)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]  # end of each tie group
    tps = np.cumsum(y_sorted)[last]
    precision = tps / (last + 1.0)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier_score(y_true: Any, probability: Any) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome."""
    y = np.asarray(y_true, dtype=float)
    return float(np.mean((np.asarray(probability, dtype=float) - y) ** 2))


def top_decile_lift(y_true: Any, score: Any, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` of scores (ceil(fraction * n) rows, stable
    order for ties) divided by the overall positive rate."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.size == 0 or y.mean() == 0:
        return float("nan")
    k = max(1, int(np.ceil(fraction * y.size)))
    top = np.argsort(-s, kind="mergesort")[:k]
    return float(y[top].mean() / y.mean())


def classification_metrics(y_true: Any, probability: Any) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, top-decile lift and the base rate."""
    y = np.asarray(y_true)
    return {
        "roc_auc": roc_auc(y, probability),
        "pr_auc": average_precision(y, probability),
        "brier": brier_score(y, probability),
        "top_decile_lift": top_decile_lift(y, probability),
        "base_rate": float(np.mean(y)),
    }


def lift_table(y_true: Any, score: Any, bins: int = 10) -> pd.DataFrame:
    """Lift by score bin (bin 1 = highest scores): rows are sorted by descending score (stable
    for ties) and cut into ``bins`` groups of equal size (the first ``n % bins`` get one more).

    Columns: bin, customers, positives, rate, lift (rate / overall rate), cumulative_lift,
    cumulative_gain (share of all positives captured by bins 1..b)."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape or y.size == 0:
        raise InputError(f"lift needs as many labels as scores, got {y.size} and {s.size}")
    bins = max(1, min(int(bins), y.size))
    order = np.argsort(-s, kind="mergesort")
    groups = np.array_split(y[order], bins)
    base = y.mean()
    customers = np.array([g.size for g in groups])
    positives = np.array([g.sum() for g in groups])
    rate = positives / customers
    cum_rate = np.cumsum(positives) / np.cumsum(customers)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin": np.arange(1, bins + 1),
                "customers": customers,
                "positives": positives,
                "rate": rate,
                "lift": rate / base,
                "cumulative_lift": cum_rate / base,
                "cumulative_gain": np.cumsum(positives) / positives.sum(),
            }
        )


def calibration_table(y_true: Any, probability: Any, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability and observed positive rate per equal-width probability bin
    (empty bins left out). Columns: bin, lower, upper, customers, mean_predicted, observed_rate."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(probability, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise InputError(f"calibration needs as many labels as scores, got {y.size} and {p.size}")
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, int(bins) - 1)
    counts = np.bincount(which, minlength=int(bins))
    keep = counts > 0
    sums_p = np.bincount(which, weights=p, minlength=int(bins))
    sums_y = np.bincount(which, weights=y, minlength=int(bins))
    return pd.DataFrame(
        {
            "bin": np.arange(1, int(bins) + 1)[keep],
            "lower": edges[:-1][keep],
            "upper": edges[1:][keep],
            "customers": counts[keep],
            "mean_predicted": sums_p[keep] / counts[keep],
            "observed_rate": sums_y[keep] / counts[keep],
        }
    )
