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


class _Trees:
    """The stored trees' node arrays, walked row-wise in numpy."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        sizes = np.asarray(arrays["gbm_tree_sizes"], dtype=np.int64)
        self.starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        self.sizes = sizes
        self.baseline = float(arrays["gbm_baseline"][0])
        self.value = arrays["gbm_value"]
        self.feat = arrays["gbm_feature_idx"].astype(np.int64)
        self.thr = arrays["gbm_num_threshold"]
        self.miss_left = arrays["gbm_missing_go_to_left"].astype(bool)
        self.left = arrays["gbm_left"].astype(np.int64)
        self.right = arrays["gbm_right"].astype(np.int64)
        self.leaf = arrays["gbm_is_leaf"].astype(bool)

    def leaf_values(
        self, tree: int, D: np.ndarray, path: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """The leaf value tree ``tree`` gives every row of ``D``; with ``path`` (a list), also
        the split column each row meets at every depth appended to it (-1 once in its leaf)."""
        start = self.starts[tree]
        rows = np.arange(D.shape[0])
        node = np.full(D.shape[0], start, dtype=np.int64)
        active = ~self.leaf[node]
        while active.any():
            n = node[active]
            if path is not None:
                met = np.full(D.shape[0], -1, dtype=np.int64)
                met[active] = self.feat[n]
                path.append(met)
            x = D[rows[active], self.feat[n]]
            go_left = np.where(np.isnan(x), self.miss_left[n], x <= self.thr[n])
            node[active] = start + np.where(go_left, self.left[n], self.right[n])
            active = ~self.leaf[node]
        return self.value[node]

    def split_features(self, tree: int) -> np.ndarray:
        """The design columns tree ``tree`` splits on."""
        nodes = slice(self.starts[tree], self.starts[tree] + self.sizes[tree])
        return np.unique(self.feat[nodes][~self.leaf[nodes]])


def raw_score(arrays: dict[str, np.ndarray], D: np.ndarray) -> np.ndarray:
    """Raw score (log-odds) of the stored trees: numeric splits only (one-hot design matrix)."""
    trees = _Trees(arrays)
    raw = np.full(D.shape[0], trees.baseline)
    for t in range(len(trees.starts)):
        raw += trees.leaf_values(t, D)
    return raw


def occlusion_contributions(
    arrays: dict[str, np.ndarray],
    D: np.ndarray,
    reference: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """(rows, n_groups): the raw score of each row minus its raw score with the design columns of
    group ``g`` (``groups[j] == g``) set to ``reference``'s.

    Summed tree by tree: a tree that never splits on a group's columns gives both rows the same
    leaf, and so does a tree whose path for the row meets no split on them, and a row whose
    group columns already equal the reference's is unchanged: only the other trees and rows
    are walked again — the same numbers as scoring every occluded table
    in full, at a fraction of the cost.
    """
    trees = _Trees(arrays)
    out = np.zeros((D.shape[0], n_groups))
    changed = {}
    for t in range(len(trees.starts)):
        used = np.unique(groups[trees.split_features(t)])
        if not len(used):
            continue
        path: list[np.ndarray] = []
        base = trees.leaf_values(t, D, path)
        path_groups = [np.where(met >= 0, groups[np.maximum(met, 0)], -1) for met in path]
        for g in used:
            if g not in changed:
                cols = np.flatnonzero(groups == g)
                changed[g] = (cols, (D[:, cols] != reference[cols]).any(axis=1))
            cols, differs = changed[g]
            # only a row that meets a split on g on its path can land in another leaf
            rows = np.flatnonzero(differs & np.logical_or.reduce([p == g for p in path_groups]))
            if not len(rows):
                continue
            occluded = D[rows]
            occluded[:, cols] = reference[cols]
            out[rows, g] += base[rows] - trees.leaf_values(t, occluded)
    return out
