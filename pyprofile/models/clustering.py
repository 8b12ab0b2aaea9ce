"""k-means and the criteria that choose segments, in float64 numpy.

Distances are summed in a fixed order (left to right over the features), the order of the SQL
that :mod:`pyprofile.warehouse.scoring_sql` writes, so Python and SQL pick the same centroid.

The selection criteria are computed for any partition of the same rows in one space (the
segmenter uses the preprocessed features for every candidate, whatever space the candidate
clustered in):

* **silhouette** from a precomputed distance matrix (exact, all rows of the sample);
* **Davies-Bouldin** and **Calinski-Harabasz** (scikit-learn);
* **stability**: the mean adjusted Rand index (ARI) over all pairs of partitions that refits
  on different bootstrap samples give the same rows, with its jackknife standard error.

:func:`choose` is the rule that turns them into one choice.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from pyprofile.models.data import sample_rows


def squared_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every row to every center, summed left to right."""
    diff = x[:, [0]] - centers[None, :, 0]
    acc = diff * diff
    for j in range(1, x.shape[1]):
        diff = x[:, [j]] - centers[None, :, j]
        acc += diff * diff
    return acc


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Cap BLAS and OpenMP threads (k-means, distances) for a block; None leaves them.

    scikit-learn's k-means on a few thousand rows is dominated by OpenMP start-up and spinning,
    which on a busy machine costs ten times the arithmetic; one thread is fastest there.
    """
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


KMEANS_ROWS = 50_000  # above this many rows k-means learns its centers on a sample


def kmeans(space: np.ndarray, k: int, *, n_init: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centers, labels) of scikit-learn's k-means (k-means++ starts, best of ``n_init``).

    Above ``KMEANS_ROWS`` rows the centers are learnt on a seeded sample of that many rows and
    every row gets its nearest center: the cost stops growing with the table, and the centers
    are those of full k-means to within sampling noise. (Mini-batch k-means, tried first, fell
    into worse optima on the 100k demo: 7 % more inertia and ARI 0.63 instead of 0.75 on three
    seeds of five; the sample never did.) Labels are always each row's nearest center, as
    predict and SQL assign them.
    """
    from sklearn.cluster import KMeans

    rows = sample_rows(len(space), KMEANS_ROWS, seed)
    fit_on = space if rows is None else space[rows]
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(fit_on)
    centers = km.cluster_centers_.astype(np.float64)
    if fit_on is space:
        return centers, km.labels_.astype(np.int64)
    return centers, nearest(space, centers).astype(np.int64)


def nearest(space: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center of every row (first on ties, as predict and SQL)."""
    return np.argmin(squared_distances(space, centers), axis=1)


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between all rows of ``x`` (n x n, float64, zero diagonal)."""
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(np.maximum(d2, 0.0))


def silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` from a precomputed distance matrix (Rousseeuw 1987).

    A row alone in its cluster scores 0, as in scikit-learn; fewer than two clusters: 0.
    """
    _, codes = np.unique(labels, return_inverse=True)
    k = int(codes.max()) + 1 if len(codes) else 0
    if k < 2:
        return 0.0
    member = np.zeros((len(codes), k))
    member[np.arange(len(codes)), codes] = 1.0
    sizes = member.sum(axis=0)
    mean_to = (distances @ member) / sizes  # mean distance of each row to each cluster
    own = sizes[codes]
    rows = np.arange(len(codes))
    a = mean_to[rows, codes] * own / np.maximum(own - 1, 1)  # excluding the row itself
    mean_to[rows, codes] = np.inf
    b = mean_to.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def criteria(space: np.ndarray, distances: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of ``labels`` in ``space``."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    if len(np.unique(labels)) < 2:  # undefined: left out of the means
        return {"silhouette": 0.0, "davies_bouldin": None, "calinski_harabasz": None}
    return {
        "silhouette": silhouette(distances, labels),
        "davies_bouldin": float(davies_bouldin_score(space, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(space, labels)),
    }


def stability(partitions: list[np.ndarray]) -> tuple[float, float]:
    """(mean ARI over all pairs of ``partitions`` of the same rows, its jackknife std error).

    The standard error leaves out one partition at a time (every pair that contains it); it
    is 0 with fewer than three partitions.
    """
    from sklearn.metrics import adjusted_rand_score

    b = len(partitions)
    pairs = {
        (i, j): float(adjusted_rand_score(partitions[i], partitions[j]))
        for i, j in itertools.combinations(range(b), 2)
    }
    if not pairs:
        return 1.0, 0.0
    mean = float(np.mean(list(pairs.values())))
    if b < 3:
        return mean, 0.0
    loo = np.array([np.mean([v for p, v in pairs.items() if i not in p]) for i in range(b)])
    return mean, float(np.sqrt((b - 1) / b * ((loo - loo.mean()) ** 2).sum()))


def finalists(rows: list[dict[str, Any]], baseline: str = "kmeans") -> list[dict[str, Any]]:
    """One candidate per k: the ``baseline`` method's, unless another method at that k is both
    better separated (higher silhouette) and at least as stable; then the best such one."""
    by_k: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_k.setdefault(r["k"], []).append(r)
    out = []
    for group in by_k.values():
        base = next((r for r in group if r["method"] == baseline), None)
        better = [
            r
            for r in group
            if r is not base
            and (
                base is None
                or (r["silhouette"] > base["silhouette"] and r["stability"] >= base["stability"])
            )
        ]
        out.append(max(better, key=lambda r: r["silhouette"]) if better else base)
    return out


def choose(rows: list[dict[str, Any]], margin: float) -> dict[str, Any]:
    """The selection rule. Per k, the finalist (see :func:`finalists`); among the finalists
    whose stability is within ``margin`` of the most stable one, the highest silhouette (ties:
    fewer segments)."""
    final = finalists(rows)
    top = max(r["stability"] for r in final)
    stable = [r for r in final if r["stability"] >= top - margin]
    return max(stable, key=lambda r: (r["silhouette"], -r["k"]))
