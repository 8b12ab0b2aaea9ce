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

    def leaf_values(self, tree: int, D: np.ndarray) -> np.ndarray:
        """The leaf value tree ``tree`` gives every row of ``D``."""
        return self.value[self.walk(tree, self.roots(tree, D.shape[0]), D, np.arange(D.shape[0]))]

    def roots(self, tree: int, n: int) -> np.ndarray:
        return np.full(n, self.starts[tree], dtype=np.int64)

    def walk(self, tree, node, D, rows, *, path=None, columns=None, reference=None):
        """Walk ``node`` (one per row, in tree ``tree``) down to the leaves, reading row
        ``rows[i]`` of ``D``, except design columns flagged by ``columns`` (a boolean mask),
        read from ``reference``; returns the leaves. With ``path`` (a list), appends at each
        depth the node every row is in (-1 once in its leaf) and whether it turned left."""
        start = self.starts[tree]
        node = node.copy()
        active = np.flatnonzero(~self.leaf[node])
        while len(active):
            n = node[active]
            f = self.feat[n]
            x = D[rows[active], f]
            if columns is not None:
                x = np.where(columns[f], reference[f], x)
            go_left = np.where(np.isnan(x), self.miss_left[n], x <= self.thr[n])
            if path is not None:
                at, left = np.full(len(node), -1, dtype=np.int64), np.zeros(len(node), bool)
                at[active], left[active] = n, go_left
                path.append((at, left))
            node[active] = start + np.where(go_left, self.left[n], self.right[n])
            active = active[~self.leaf[node[active]]]
        return node

    def turns_left(self, row: np.ndarray) -> np.ndarray:
        """Per node (of every tree): whether the design row ``row`` goes left there."""
        x = row[self.feat]
        return np.where(np.isnan(x), self.miss_left, x <= self.thr)

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

    Summed tree by tree. With group ``g`` occluded, a row follows its own path through a tree
    until the first node that splits on g's columns where the reference turns the other way;
    a row without such a node keeps its leaf. Only the rows that have one are walked again, from
    the reference's side of that node, reading the reference's values for g's columns: the same
    numbers as scoring every occluded table in full, at a fraction of the cost.
    """
    trees = _Trees(arrays)
    n = D.shape[0]
    out = np.zeros((n, n_groups))
    reference_left = trees.turns_left(reference)
    for t in range(len(trees.starts)):
        used = np.unique(groups[trees.split_features(t)])
        if not len(used):
            continue
        path: list[tuple[np.ndarray, np.ndarray]] = []
        base = trees.value[trees.walk(t, trees.roots(t, n), D, np.arange(n), path=path)]
        # per depth: the group of the node where the row and the reference part ways, or -1
        parts = []
        for at, left in path:
            node = np.maximum(at, 0)
            apart = (at >= 0) & (left != reference_left[node])
            parts.append(np.where(apart, groups[trees.feat[node]], -1))
        mask = _groups_met(parts, n, n_groups)
        for g in used:
            word, bit = divmod(int(g), 64)
            rows = np.flatnonzero((mask[:, word] >> np.uint64(bit)) & np.uint64(1))
            if not len(rows):
                continue
            first = np.full(len(rows), -1, dtype=np.int64)
            for depth in range(len(path) - 1, -1, -1):  # the shallowest such node wins
                hit = parts[depth][rows] == g
                first[hit] = path[depth][0][rows[hit]]
            side = trees.starts[t] + np.where(
                reference_left[first], trees.left[first], trees.right[first]
            )
            leaves = trees.walk(t, side, D, rows, columns=groups == g, reference=reference)
            out[rows, g] += base[rows] - trees.value[leaves]
    return out


def _groups_met(met: list[np.ndarray], n: int, n_groups: int) -> np.ndarray:
    """(n, words) bitmask: bit g of row i is set when ``met[d][i] == g`` at some depth d."""
    mask = np.zeros((n, (n_groups + 63) // 64), dtype=np.uint64)
    for groups_at_depth in met:
        rows = np.flatnonzero(groups_at_depth >= 0)
        word, bit = np.divmod(groups_at_depth[rows], 64)
        mask[rows, word] |= np.left_shift(np.uint64(1), bit.astype(np.uint64))
    return mask
