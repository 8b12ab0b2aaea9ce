"""Learned customer segments: k-means on the scaled features or on an autoencoder embedding.

:class:`Segmenter` is a scikit-learn estimator (``fit`` / ``predict`` / ``fit_predict`` /
``transform``) that takes a feature table (pandas DataFrame or Arrow table, one row per
customer), never a connection. Features are prepared by :mod:`pyprofile.models.preprocessing`
(median imputation, log of heavy tails, robust scaling, clipping, one-hot categories).

Two representations compete: plain k-means on the scaled features, and k-means on the
embedding of a small ReLU autoencoder (torch, seeded with a local generator, device
``"auto"``) fine-tuned with a deep-clustering loss (reconstruction + ``cluster_weight`` x
squared distance to the nearest center, DCN-style) from the plain k-means centers.

**Selection: one space, and stability.** The representation and the number of segments are
chosen together, by criteria that are computed the same way for every candidate:

1. A seeded sample of ``selection_rows`` training rows is drawn. Each of ``stability_refits``
   refits draws a bootstrap sample of it (with replacement, same size) and runs every
   candidate procedure on it (k-means for each ``k``; the autoencoder trained on the same
   bootstrap sample, fine-tuned for each ``k``, then k-means on its embedding). Each refit
   then assigns *all* sample rows to its nearest center.
2. Every partition is scored **in the preprocessed-feature space** (never in the space it was
   clustered in, which would flatter the embedding): silhouette (exact, from the sample's
   distance matrix), Davies-Bouldin and Calinski-Harabasz, averaged over the refits; and
   **stability**, the mean adjusted Rand index between the refits' partitions of the same rows
   (over all pairs; with its jackknife standard error).
3. Rule. Per ``k``, the autoencoder replaces plain k-means only when it is both better separated
   (silhouette) and at least as stable: the model that costs more to train and to score in SQL
   has to win on both counts in the common space. Of these finalists, the ones whose stability is within
   ``stability_margin`` of the most stable count as stable, and the most separated of them
   (silhouette) wins (ties: fewer segments). A ``k`` that cuts a tight group (customers
   without purchases, one-order guests) along noise is cut differently by each refit, so it
   loses stability, and two halves of one group are no better separated than the group is from
   the others, so it gains no silhouette.

The chosen candidate is then fitted on all training rows, next to the **baseline** (k-means on
the scaled features at the same ``k``); the criteria of both on the selection sample, their
stability and their agreement are kept in ``baseline_comparison_``; every candidate's scores in
``scores_``; each representation's best candidate in ``comparison_``; the rule in
``selection_``. Cost does not grow with the customers: the refits run on the sample, the final
fit trains once on at most ``max_train_rows`` rows, and k-means runs on one thread (``threads``),
which on a busy machine is an order of magnitude faster than scikit-learn's OpenMP default.

Scoring is done in float64 numpy with sums accumulated in a fixed order, the same order as the
SQL that :func:`pyprofile.warehouse.scoring_sql.segment_of_sql` writes, so the persisted
``segment_of`` function returns exactly the segment :meth:`Segmenter.predict` returns.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.autoencoder import Autoencoder, encode, standardize_last
from pyprofile.models.base import Estimator
from pyprofile.models.clustering import (
    choose,
    criteria,
    finalists,
    kmeans,
    limit_threads,
    nearest,
    pairwise_distances,
    squared_distances,
    stability,
)
from pyprofile.models.data import as_frame
from pyprofile.models.preprocessing import apply_preprocessing, fit_preprocessing, output_names

SPACE = "preprocessed features"
RULE = (
    "per k, plain k-means unless the autoencoder is both better separated (silhouette) and at "
    "least as stable; of these, the ones whose stability (mean ARI between bootstrap refits) is "
    "within the margin of the most stable; of those, the highest silhouette (ties: fewer "
    "segments); every criterion in the preprocessed-feature space"
)


def _criteria_only(row: dict[str, Any]) -> dict[str, Any]:
    """A scores row without its labels (method, space, flags): what the CLI tabulates."""
    skip = ("method", "space", "finalist", "stable", "chosen")
    return {k: v for k, v in row.items() if k not in skip}


# --------------------------------------------------------------------------- estimator
class Segmenter(Estimator):
    """Customer segmentation (k-means on scaled features or on an autoencoder embedding, chosen
    by criteria in one space) with SQL export and stable segment ids.

    Parameters
    ----------
    k : number of segments, or None to choose it from ``k_range`` (inclusive).
    embedding_dim, hidden_dim, epochs, batch_size, learning_rate : autoencoder shape and training.
    noise : std of Gaussian input noise while training (denoising autoencoder; 0 = off).
    cluster_epochs, cluster_weight : deep-clustering fine-tune (epochs; weight of the squared
        distance to the nearest center next to the reconstruction loss); 0 epochs = off.
    selection_rows : the sample the refits are drawn from and every candidate is scored on.
    selection_epochs : the deep-clustering fine-tune's epochs inside each refit.
    stability_refits : bootstrap refits per candidate (stability is the mean ARI over their
        pairs); at least 2.
    stability_margin : candidates this close to the most stable one count as stable; the most
        separated of them (silhouette) is kept.
    standardize_embedding : give every embedding dimension unit variance (folded into the
        encoder's last layer, so SQL needs no extra step).
    method : ``"auto"`` (both representations compete), ``"autoencoder"`` or ``"kmeans"``.
    columns : feature columns to use (None: every usable column except ``exclude``).
    exclude : columns never used as features (ids are always excluded).
    max_categories : string columns with more distinct values are dropped.
    clip : scaled features are clipped to ``[-clip, clip]``.
    n_init : k-means restarts (every k-means: refits, final model, baseline).
    max_train_rows : train on a seeded sample of at most this many rows (predict scores all).
    threads : CPU threads of torch and of k-means while fitting (restored afterwards); None
        leaves the libraries' settings. One thread is fastest for this small work.
    """

    fitted_attribute: ClassVar[str] = "cluster_centers_"
    artifact_format: ClassVar[str] = "pyprofile.segmenter/3"

    def __init__(
        self,
        k: int | None = None,
        k_range: tuple[int, int] = (3, 12),
        *,
        embedding_dim: int = 4,
        hidden_dim: int = 32,
        epochs: int = 40,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        noise: float = 0.0,
        cluster_epochs: int = 20,
        cluster_weight: float = 0.1,
        selection_rows: int = 3000,
        selection_epochs: int = 10,
        stability_refits: int = 4,
        stability_margin: float = 0.05,
        standardize_embedding: bool = True,
        method: str = "auto",
        columns: list[str] | None = None,
        exclude: tuple[str, ...] = (),
        max_categories: int = 12,
        clip: float = 5.0,
        n_init: int = 4,
        max_train_rows: int = 200_000,
        random_state: int = 0,
        device: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
    ):
        self.k = k
        self.k_range = k_range
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.noise = noise
        self.cluster_epochs = cluster_epochs
        self.cluster_weight = cluster_weight
        self.selection_rows = selection_rows
        self.selection_epochs = selection_epochs
        self.stability_refits = stability_refits
        self.stability_margin = stability_margin
        self.standardize_embedding = standardize_embedding
        self.method = method
        self.columns = columns
        self.exclude = exclude
        self.max_categories = max_categories
        self.clip = clip
        self.n_init = n_init
        self.max_train_rows = max_train_rows
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def _validate(self, n_rows: int) -> list[int]:
        if self.method not in ("auto", "autoencoder", "kmeans"):
            raise InputError(
                f"method must be 'auto', 'autoencoder' or 'kmeans', not {self.method!r}"
            )
        if self.stability_refits < 2:
            raise InputError(f"stability_refits must be at least 2, got {self.stability_refits}")
        if self.k is not None:
            k_values = [int(self.k)]
            if self.k < 2:
                raise InputError(f"k must be at least 2, got {self.k}")
        else:
            lo, hi = (int(v) for v in self.k_range)
            if lo < 2 or hi < lo:
                raise InputError(
                    f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range}"
                )
            k_values = list(range(lo, hi + 1))
        if n_rows <= k_values[0]:
            raise InputError(
                f"feature table has {n_rows} customer(s): too few for {k_values[0]} segments "
                f"(need at least {k_values[0] + 1})"
            )
        return [k for k in k_values if k < n_rows]

    def _feature_columns(self, frame: pd.DataFrame) -> list[str]:
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise InputError(
                    f"feature table ({len(frame)} rows) lacks column(s) {', '.join(missing)}"
                )
            return list(self.columns)
        return [c for c in frame.columns if c not in set(self.exclude)]

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        previous: Segmenter | None = None,
        previous_centroids: pd.DataFrame | None = None,
    ) -> Segmenter:
        """Fit preprocessing, choose and fit the segments; match ids to a previous version.

        ``previous`` is a fitted Segmenter (e.g. loaded from the registry): its assignment of
        the training rows defines the previous segments. ``previous_centroids`` is a DataFrame
        indexed by segment id whose columns are preprocessed feature names (see
        ``profile_centers_``). New segments are matched to old ones with the Hungarian
        algorithm on the distance between their mean preprocessed features.
        """
        frame = as_frame(X)
        k_values = self._validate(len(frame))
        z_all = self._fit_preprocessing(frame)
        rng = np.random.default_rng(self.random_state)
        n = len(frame)
        train_idx = (
            np.sort(rng.choice(n, self.max_train_rows, replace=False))
            if n > self.max_train_rows
            else np.arange(n)
        )
        z = z_all[train_idx]
        with limit_threads(self.threads), warnings.catch_warnings():
            # k-means on bootstrap samples with many tied rows may find fewer distinct clusters
            warnings.filterwarnings("ignore", message="Number of distinct clusters")
            sample, distances, chosen = self._select(z, k_values, rng)
            final = self._fit_final(z, chosen["method"], chosen["k"], int(rng.integers(2**31 - 1)))
            self._compare(final, sample, distances)
            space = encode(z_all, final["layers"])
            labels = nearest(space, final["centers"])
            self._assign_ids(z_all, labels, final["centers"], previous, previous_centroids, frame)
            self._fit_map(space[train_idx])
        return self

    def _fit_preprocessing(self, frame: pd.DataFrame) -> np.ndarray:
        """Learn the preprocessing spec (warning about dropped columns); the scaled matrix."""
        spec, dropped = fit_preprocessing(
            frame,
            self._feature_columns(frame),
            max_categories=self.max_categories,
            clip=self.clip,
        )
        for name, reason in dropped.items():
            warnings.warn(f"segmenter: column {name} dropped ({reason})", UserWarning, stacklevel=3)
        if not spec:
            raise InputError(f"feature table ({len(frame)} rows) has no usable feature column")
        self.preprocessing_ = spec
        self.dropped_columns_ = dropped
        self.feature_names_in_ = [item["column"] for item in spec]
        self.feature_names_out_ = output_names(spec)
        return apply_preprocessing(frame, spec)

    # ------------------------------------------------------------------ selection
    def _methods(self) -> list[str]:
        return ["kmeans", "autoencoder"] if self.method == "auto" else [self.method]

    def _select(
        self, z: np.ndarray, k_values: list[int], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Refit every candidate on bootstrap samples of one sample, score every partition in
        the preprocessed-feature space, apply the rule. Returns (sample, its distances, the
        chosen candidate's scores)."""
        m = min(self.selection_rows, len(z))
        sample = z[np.sort(rng.choice(len(z), m, replace=False))] if len(z) > m else z
        distances = pairwise_distances(sample)
        partitions: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
        for _ in range(self.stability_refits):
            boot = sample[rng.choice(m, m, replace=True)]
            refit = self._refit(boot, sample, k_values, int(rng.integers(2**31 - 1)))
            for key, labels in refit.items():
                partitions[key].append(labels)
        rows = [
            self._score(sample, distances, method, k, parts)
            for (method, k), parts in sorted(partitions.items(), key=lambda kv: kv[0][::-1])
        ]
        candidates = [r for r in rows if r["method"] in self._methods()]
        margin = self.stability_margin
        chosen = choose(candidates, margin)
        final = finalists(candidates)
        top = max(r["stability"] for r in final)
        for r in rows:
            r["finalist"] = any(r is f for f in final)
            r["stable"] = r["finalist"] and r["stability"] >= top - margin
            r["chosen"] = r is chosen
        self.scores_ = pd.DataFrame(rows)
        self.comparison_ = {  # each representation's best candidate, by the same rule
            method: _criteria_only(choose([r for r in candidates if r["method"] == method], margin))
            for method in self._methods()
        }
        self.comparison_["kept"] = chosen["method"]
        self.selection_ = {
            "rule": RULE,
            "space": SPACE,
            "sample_rows": int(m),
            "refits": int(self.stability_refits),
            "margin": float(margin),
            "max_stability": float(top),
            "method": chosen["method"],
            "k": int(chosen["k"]),
        }
        return sample, distances, chosen

    def _refit(
        self, boot: np.ndarray, sample: np.ndarray, k_values: list[int], seed: int
    ) -> dict[tuple[str, int], np.ndarray]:
        """One refit of every candidate on ``boot``; each partitions all ``sample`` rows."""
        out: dict[tuple[str, int], np.ndarray] = {}
        ae = None
        if "autoencoder" in self._methods():
            ae = self._autoencoder(boot.shape[1], seed)
            ae.train(boot, epochs=self.epochs, **self._train_options())
        for k in k_values:
            centers, labels = kmeans(boot, k, n_init=self.n_init, seed=seed)
            out[("kmeans", k)] = nearest(sample, centers)
            if ae is not None:
                layers, _ = self._tune(
                    ae, boot, labels, k, self.selection_epochs, seed, exact=False
                )
                embedded = encode(boot, layers, exact=False)
                e_centers, _ = kmeans(embedded, k, n_init=self.n_init, seed=seed)
                out[("autoencoder", k)] = nearest(encode(sample, layers, exact=False), e_centers)
        return out

    def _score(
        self,
        sample: np.ndarray,
        distances: np.ndarray,
        method: str,
        k: int,
        partitions: list[np.ndarray],
    ) -> dict[str, Any]:
        """A candidate's criteria: means over its refits, all in the preprocessed space."""
        scored = [criteria(sample, distances, labels) for labels in partitions]
        mean_stability, se = stability(partitions)
        row: dict[str, Any] = {"method": method, "k": int(k), "space": SPACE}
        for name in ("silhouette", "davies_bouldin", "calinski_harabasz"):
            values = [s[name] for s in scored if s[name] is not None]
            row[name] = float(np.mean(values)) if values else None
        row["stability"] = mean_stability
        row["stability_se"] = se
        row["smallest_share"] = float(
            np.mean([np.bincount(p, minlength=k).min() / len(p) for p in partitions])
        )
        return row

    # ------------------------------------------------------------------ final fit
    def _autoencoder(self, n_in: int, seed: int) -> Autoencoder:
        return Autoencoder(
            n_in,
            hidden_dim=self.hidden_dim,
            embedding_dim=self.embedding_dim,
            seed=seed,
            device=self.device,
            threads=self.threads,
        )

    def _train_options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "noise": self.noise,
            "verbose": self.verbose,
        }

    def _tune(
        self,
        ae: Autoencoder,
        data: np.ndarray,
        labels: np.ndarray,
        k: int,
        epochs: int,
        seed: int,
        *,
        exact: bool = True,
    ) -> tuple[list, list]:
        """Encoder layers fine-tuned (a copy of ``ae``) towards the embedded means of the k
        groups in ``labels`` for ``epochs``, standardised; and the training records."""
        layers, history = ae.layers(), []
        if epochs > 0:
            emb = encode(data, layers, exact=exact)
            init = np.vstack(
                [
                    emb[labels == c].mean(axis=0) if (labels == c).any() else emb.mean(axis=0)
                    for c in range(k)
                ]
            )
            tuned = ae.clone(seed)
            history = tuned.train(
                data,
                epochs=epochs,
                centers=init,
                gamma=self.cluster_weight,
                phase=f"cluster k={k}",
                **self._train_options(),
            )
            layers = tuned.layers()
        if self.standardize_embedding:
            layers = standardize_last(layers, encode(data, layers, exact=exact))
        return layers, history

    def _fit_final(self, z: np.ndarray, method: str, k: int, seed: int) -> dict[str, Any]:
        """The chosen candidate and the baseline (k-means on the scaled features at the same
        k) fitted on all training rows."""
        centers, labels = kmeans(z, k, n_init=self.n_init, seed=seed)
        if len(np.unique(labels)) < 2:
            raise InputError(
                "k-means found fewer than 2 distinct segments: the features do not vary"
            )
        final = {
            "layers": [],
            "centers": centers,
            "labels": labels,
            "baseline": centers,
            "baseline_labels": labels,
        }
        self.history_: list[dict[str, Any]] = []
        if method == "autoencoder":
            ae = self._autoencoder(z.shape[1], seed)
            self.history_ = ae.train(z, epochs=self.epochs, **self._train_options())
            layers, history = self._tune(ae, z, labels, k, self.cluster_epochs, seed)
            self.history_ += history
            e_centers, e_labels = kmeans(encode(z, layers), k, n_init=self.n_init, seed=seed)
            final.update(layers=layers, centers=e_centers, labels=e_labels)
        self.method_ = method
        self.k_ = int(k)
        self.encoder_layers_ = final["layers"]
        return final

    def _compare(self, final: dict[str, Any], sample: np.ndarray, distances: np.ndarray) -> None:
        """The fitted model against the baseline at the same k: their criteria on the selection
        sample (preprocessed space), their stability, and how much they agree."""
        from sklearn.metrics import adjusted_rand_score

        table = self.scores_.set_index(["method", "k"])

        def entry(method: str, labels: np.ndarray) -> dict[str, Any]:
            row = table.loc[(method, self.k_)]
            return {
                "method": method,
                "k": self.k_,
                **criteria(sample, distances, labels),
                "stability": float(row["stability"]),
                "stability_se": float(row["stability_se"]),
            }

        self.baseline_comparison_ = {
            "space": SPACE,
            "sample_rows": int(len(sample)),
            "chosen": entry(
                self.method_, nearest(encode(sample, final["layers"]), final["centers"])
            ),
            "baseline": entry("kmeans", nearest(sample, final["baseline"])),
            # on all training rows: 1.0 when the chosen model is the baseline
            "agreement_ari": float(adjusted_rand_score(final["labels"], final["baseline_labels"])),
        }

    def _assign_ids(
        self,
        z_all: np.ndarray,
        labels: np.ndarray,
        centers: np.ndarray,
        previous: Segmenter | None,
        previous_centroids: pd.DataFrame | None,
        frame: pd.DataFrame,
    ) -> None:
        """Give each cluster a segment id: the matching previous segment's id, else the next
        free one (by size); keep the centers and mean preprocessed features in id order."""
        k = centers.shape[0]
        sizes = np.bincount(labels, minlength=k)
        means = np.vstack(
            [z_all[labels == c].mean(axis=0) if sizes[c] else centers[c] * np.nan for c in range(k)]
        )
        prev = self._previous_means(z_all, means, previous, previous_centroids, frame)
        if prev is None:
            order = np.argsort(-sizes, kind="stable")  # id 0 = largest segment
            ids = np.empty(k, dtype=np.int64)
            ids[order] = np.arange(k)
        else:
            ids = self._match_ids(sizes, *prev)
        order = np.argsort(ids)
        self.segment_ids_ = ids[order]
        self.cluster_centers_ = centers[order]
        self.profile_centers_ = pd.DataFrame(
            means[order],
            index=pd.Index(self.segment_ids_, name="segment_id"),
            columns=self.feature_names_out_,
        )
        self.segment_sizes_ = dict(
            zip(self.segment_ids_.tolist(), sizes[order].tolist(), strict=True)
        )

    def _previous_means(self, z_all, means, previous, previous_centroids, frame):
        """(new means, previous ids, previous means) in comparable columns, or None."""
        if previous is not None:
            previous._check_fitted()
            prev_labels = previous.predict(frame)
            prev_ids = np.unique(prev_labels)
            prev_means = np.vstack([z_all[prev_labels == p].mean(axis=0) for p in prev_ids])
            return means, prev_ids, prev_means
        if previous_centroids is None:
            return None
        pc = as_frame(previous_centroids)
        common = [c for c in self.feature_names_out_ if c in pc.columns]
        if not common:
            raise InputError("previous_centroids share no column with the preprocessed features")
        idx = [self.feature_names_out_.index(c) for c in common]
        prev_ids = pc.index.to_numpy().astype(int)
        return means[:, idx], prev_ids, pc[common].to_numpy(dtype=np.float64)

    def _match_ids(
        self, sizes: np.ndarray, means: np.ndarray, prev_ids: np.ndarray, prev_means: np.ndarray
    ) -> np.ndarray:
        """Hungarian matching of new clusters to previous segments; unmatched get new ids."""
        from scipy.optimize import linear_sum_assignment

        k = len(sizes)
        cost = np.sqrt(((np.nan_to_num(means)[:, None, :] - prev_means[None]) ** 2).sum(-1))
        rows, cols = linear_sum_assignment(cost)
        ids = np.full(k, -1, dtype=np.int64)
        ids[rows] = prev_ids[cols]
        taken = set(prev_ids.tolist())
        free = (i for i in range(k + len(prev_ids)) if i not in taken)
        for c in np.argsort(-sizes, kind="stable"):
            if ids[c] < 0:
                ids[c] = next(free)
        return ids

    def _fit_map(self, space: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        n_comp = min(2, space.shape[1])
        pca = PCA(n_components=n_comp, svd_solver="full").fit(space)
        components = np.zeros((2, space.shape[1]))
        components[:n_comp] = pca.components_
        self.map_mean_ = pca.mean_.astype(np.float64)
        self.map_components_ = components

    # ------------------------------------------------------------------ scoring
    def transform(self, X: Any) -> np.ndarray:
        """The space the segments live in (the embedding, or the scaled features), float64."""
        self._check_fitted()
        return encode(apply_preprocessing(as_frame(X), self.preprocessing_), self.encoder_layers_)

    def drift_from(self, previous: Segmenter, X: Any) -> dict[int, float]:
        """How far each segment moved since ``previous``: on the rows ``X``, the distance (in
        this model's preprocessed feature space) between the segment's mean and the mean of
        the rows ``previous`` put in the segment of the same id. Ids that only one model has
        are left out."""
        self._check_fitted()
        frame = as_frame(X)
        z = apply_preprocessing(frame, self.preprocessing_)
        new, old = self.predict(frame), previous.predict(frame)
        drift = {}
        for sid in self.segment_ids_.tolist():
            here, there = new == sid, old == sid
            if here.any() and there.any():
                drift[int(sid)] = float(np.linalg.norm(z[here].mean(0) - z[there].mean(0)))
        return drift

    def predict(self, X: Any) -> np.ndarray:
        """Segment id of every row (nearest centroid, float64, first on ties, as in SQL)."""
        return self.score(X)["segment_id"].to_numpy()

    def fit_predict(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, **fit_params).predict(X)

    def score(self, X: Any) -> pd.DataFrame:
        """segment_id, distance_to_centroid, map_x, map_y for every row, in input order."""
        space = self.transform(X)
        d2 = squared_distances(space, self.cluster_centers_)
        best = np.argmin(d2, axis=1)
        coords = (space - self.map_mean_) @ self.map_components_.T
        return pd.DataFrame(
            {
                "segment_id": self.segment_ids_[best],
                "distance_to_centroid": np.sqrt(d2[np.arange(len(best)), best]),
                "map_x": coords[:, 0],
                "map_y": coords[:, 1],
            }
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            "segment_ids": self.segment_ids_,
            "cluster_centers": self.cluster_centers_,
            "profile_centers": self.profile_centers_.to_numpy(),
            "map_mean": self.map_mean_,
            "map_components": self.map_components_,
        }
        for i, (weight, bias) in enumerate(self.encoder_layers_):
            arrays[f"encoder_{i}_weight"] = weight
            arrays[f"encoder_{i}_bias"] = bias
        state = {
            "preprocessing": self.preprocessing_,
            "dropped_columns": self.dropped_columns_,
            "feature_names_out": self.feature_names_out_,
            "method": self.method_,
            "k": self.k_,
            "n_layers": len(self.encoder_layers_),
            "segment_sizes": {str(k): v for k, v in self.segment_sizes_.items()},
            "comparison": self.comparison_,
            "baseline_comparison": self.baseline_comparison_,
            "selection": self.selection_,
            "score_columns": list(self.scores_.columns),
            "scores": self.scores_.to_dict(orient="records"),
            "history": self.history_,
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.preprocessing_ = state["preprocessing"]
        self.dropped_columns_ = state["dropped_columns"]
        self.feature_names_in_ = [item["column"] for item in self.preprocessing_]
        self.feature_names_out_ = state["feature_names_out"]
        self.method_ = state["method"]
        self.k_ = state["k"]
        self.comparison_ = state["comparison"]
        self.baseline_comparison_ = state["baseline_comparison"]
        self.selection_ = state["selection"]
        self.scores_ = pd.DataFrame.from_records(state["scores"], columns=state["score_columns"])
        self.history_ = state["history"]
        self.segment_sizes_ = {int(k): v for k, v in state["segment_sizes"].items()}
        self.encoder_layers_ = [
            (arrays[f"encoder_{i}_weight"], arrays[f"encoder_{i}_bias"])
            for i in range(state["n_layers"])
        ]
        self.segment_ids_ = arrays["segment_ids"]
        self.cluster_centers_ = arrays["cluster_centers"]
        self.profile_centers_ = pd.DataFrame(
            arrays["profile_centers"],
            index=pd.Index(self.segment_ids_, name="segment_id"),
            columns=self.feature_names_out_,
        )
        self.map_mean_ = arrays["map_mean"]
        self.map_components_ = arrays["map_components"]
