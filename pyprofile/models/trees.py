"""A fitted ``HistGradientBoostingClassifier`` as plain arrays, and its raw score in numpy.

The trees are stored in the registry as arrays (no pickle) and walked here, so a model loaded
from the registry scores exactly like the scikit-learn estimator it came from.
"""

from __future__ import annotations

import numpy as np


def tree_arrays(gbm) -> dict[str, np.ndarray]:
    """The fitted trees of a HistGradientBoostingClassifier as plain arrays (no pickle)."""
    out = {"gbm_baseline": np.asarray(gbm._baseline_prediction, dtype=float).reshape(-1)}
    fields = (
        "value",
        "feature_idx",
        "num_threshold",
        "missing_go_to_left",
        "left",
        "right",
        "is_leaf",
    )
    trees = [stage[0].nodes for stage in gbm._predictors]
    sizes = np.array([len(t) for t in trees], dtype=np.int64)
    out["gbm_tree_sizes"] = sizes
    for f in fields:
        out[f"gbm_{f}"] = np.concatenate([t[f] for t in trees]) if trees else np.empty(0)
    return out


def raw_score(arrays: dict[str, np.ndarray], D: np.ndarray) -> np.ndarray:
    """Raw score (log-odds) of the stored trees: numeric splits only (one-hot design matrix)."""
    raw = np.full(D.shape[0], float(arrays["gbm_baseline"][0]))
    starts = np.r_[0, np.cumsum(arrays["gbm_tree_sizes"])[:-1]]
    value, feat = arrays["gbm_value"], arrays["gbm_feature_idx"].astype(np.int64)
    thr, miss_left = arrays["gbm_num_threshold"], arrays["gbm_missing_go_to_left"].astype(bool)
    left, right = arrays["gbm_left"].astype(np.int64), arrays["gbm_right"].astype(np.int64)
    leaf = arrays["gbm_is_leaf"].astype(bool)
    rows = np.arange(D.shape[0])
    for start in starts:
        node = np.full(D.shape[0], start, dtype=np.int64)
        active = ~leaf[node]
        while active.any():
            n = node[active]
            x = D[rows[active], feat[n]]
            go_left = np.where(np.isnan(x), miss_left[n], x <= thr[n])
            node[active] = start + np.where(go_left, left[n], right[n])
            active = ~leaf[node]
        raw += value[node]
    return raw
