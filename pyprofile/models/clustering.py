"""k-means and the criteria that choose the number of segments, in float64 numpy.

Distances are summed in a fixed order (left to right over the features), the order of the SQL
that :mod:`pyprofile.warehouse.scoring_sql` writes, so Python and SQL pick the same centroid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def squared_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every row to every center, summed left to right."""
    diff = x[:, [0]] - centers[None, :, 0]
    acc = diff * diff
    for j in range(1, x.shape[1]):
        diff = x[:, [j]] - centers[None, :, j]
        acc += diff * diff
    return acc


def cluster_scores(
    space: np.ndarray, k_values: list[int], *, n_init: int, seed: int, silhouette_sample: int
) -> tuple[list[dict[str, float]], dict[int, np.ndarray]]:
    """k-means for each k, with silhouette (sampled), Davies-Bouldin and Calinski-Harabasz."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_score,
    )

    rows, centers = [], {}
    sample = min(silhouette_sample, space.shape[0])
    for k in k_values:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(space)
        labels = km.labels_
        if len(np.unique(labels)) < 2:
            continue
        rows.append(
            {
                "k": k,
                "silhouette": float(
                    silhouette_score(space, labels, sample_size=sample, random_state=seed)
                ),
                "davies_bouldin": float(davies_bouldin_score(space, labels)),
                "calinski_harabasz": float(calinski_harabasz_score(space, labels)),
                "inertia": float(km.inertia_),
            }
        )
        centers[k] = km.cluster_centers_.astype(np.float64)
    return rows, centers


def best_k(rows: list[dict[str, float]]) -> int:
    """The k that most criteria prefer: each criterion votes for its best k (highest
    silhouette, lowest Davies-Bouldin, highest Calinski-Harabasz); a k with two or three votes
    wins, otherwise the silhouette's choice."""
    table = pd.DataFrame(rows)
    votes = [
        int(table.loc[table["silhouette"].idxmax(), "k"]),
        int(table.loc[table["davies_bouldin"].idxmin(), "k"]),
        int(table.loc[table["calinski_harabasz"].idxmax(), "k"]),
    ]
    for k in votes:
        if votes.count(k) >= 2:
            return k
    return votes[0]


def votes(a: dict[str, float], b: dict[str, float]) -> int:
    """How many of the three criteria ``a`` wins over ``b``."""
    return (
        int(a["silhouette"] > b["silhouette"])
        + int(a["davies_bouldin"] < b["davies_bouldin"])
        + int(a["calinski_harabasz"] > b["calinski_harabasz"])
    )
