"""Learned customer segments: an autoencoder embedding of the features, then k-means on it.

:class:`Segmenter` is a scikit-learn estimator (``fit`` / ``predict`` / ``fit_predict`` /
``transform``) that takes a feature table (pandas DataFrame or Arrow table, one row per
customer), never a connection. Features are prepared by :mod:`pyprofile.models.preprocessing`
(median imputation, log of heavy tails, robust scaling, clipping, one-hot categories).

Model: plain k-means runs on the scaled features for each ``k`` in ``k_range`` (its ``k`` is
the majority vote of silhouette on a sample, Davies-Bouldin and Calinski-Harabasz). A small
ReLU autoencoder (torch, seeded with a local generator, device ``"auto"``) maps the scaled
features to ``embedding_dim`` numbers and is fine-tuned with a deep-clustering loss
(reconstruction + ``cluster_weight`` x squared distance to the nearest center, DCN-style)
starting from the plain k-means centers; the embedding is standardised (folded into the last
layer) and k-means runs on it. The autoencoder's ``k`` starts from the plain k-means choice
(which does not depend on the network's random start, so it is stable across retrains) and is
refined within ``k_refine``: each candidate is fine-tuned briefly on a sample and the three
criteria, measured in the learned space, vote. The path (autoencoder or plain k-means) that
wins at least two of the three criteria, each measured in the space it clustered, is kept.
Every score is in ``scores_`` (per method, k and stage) and ``comparison_``.

Scoring is done in float64 numpy with sums accumulated in a fixed order, the same order as the
SQL that :func:`pyprofile.warehouse.scoring_sql.segment_of_sql` writes, so the persisted
``segment_of`` function returns exactly the segment :meth:`Segmenter.predict` returns.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.autoencoder import Autoencoder, encode, standardize_last
from pyprofile.models.base import Estimator
from pyprofile.models.clustering import best_k, cluster_scores, squared_distances, votes
from pyprofile.models.data import as_frame
from pyprofile.models.preprocessing import apply_preprocessing, fit_preprocessing, output_names


# --------------------------------------------------------------------------- estimator
class Segmenter(Estimator):
    """Autoencoder + k-means customer segmentation with SQL export and stable segment ids.

    Parameters
    ----------
    k : number of segments, or None to choose it from ``k_range`` (inclusive).
    embedding_dim, hidden_dim, epochs, batch_size, learning_rate : autoencoder shape and training.
    noise : std of Gaussian input noise while training (denoising autoencoder; 0 = off).
    cluster_epochs, cluster_weight : deep-clustering fine-tune (epochs; weight of the squared
        distance to the nearest center next to the reconstruction loss); 0 epochs = off.
    selection_epochs, selection_rows : the short fine-tune and the sample used to score each
        candidate k of the autoencoder path.
    k_refine : the autoencoder path considers the plain k-means choice of k plus or minus this
        many and lets the three criteria, measured in the learned space, vote.
    standardize_embedding : give every embedding dimension unit variance (folded into the
        encoder's last layer, so SQL needs no extra step).
    method : ``"auto"`` (keep the better of autoencoder + k-means and plain k-means),
        ``"autoencoder"`` or ``"kmeans"``.
    columns : feature columns to use (None: every usable column except ``exclude``).
    exclude : columns never used as features (ids are always excluded).
    max_categories : string columns with more distinct values are dropped.
    clip : scaled features are clipped to ``[-clip, clip]``.
    n_init : k-means restarts per k.
    silhouette_sample : rows used for the silhouette score.
    max_train_rows : train on a seeded sample of at most this many rows (predict scores all).
    threads : torch threads while training on CPU (restored afterwards); None leaves
        torch's setting. One thread is fastest for this small network.
    """

    fitted_attribute: ClassVar[str] = "cluster_centers_"
    artifact_format: ClassVar[str] = "pyprofile.segmenter/2"

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
        selection_epochs: int = 10,
        selection_rows: int = 5000,
        k_refine: int = 1,
        standardize_embedding: bool = True,
        method: str = "auto",
        columns: list[str] | None = None,
        exclude: tuple[str, ...] = (),
        max_categories: int = 12,
        clip: float = 5.0,
        n_init: int = 4,
        silhouette_sample: int = 5000,
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
        self.selection_epochs = selection_epochs
        self.selection_rows = selection_rows
        self.k_refine = k_refine
        self.standardize_embedding = standardize_embedding
        self.method = method
        self.columns = columns
        self.exclude = exclude
        self.max_categories = max_categories
        self.clip = clip
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
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
        """Fit preprocessing, autoencoder and k-means; match ids to a previous version if given.

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
        seed = int(rng.integers(2**31 - 1))
        kept = self._choose(z, k_values, seed)
        space = kept["space_fn"](z_all)
        labels = np.argmin(squared_distances(space, kept["centers"]), axis=1)
        self._assign_ids(z_all, labels, kept["centers"], previous, previous_centroids, frame)
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

    def _choose(self, z: np.ndarray, k_values: list[int], seed: int) -> dict[str, Any]:
        """Fit the candidate paths (autoencoder, plain k-means) and keep the better one."""
        results: dict[str, dict[str, Any]] = {}
        self.history_: list[dict[str, float]] = []
        plain = self._search(z, k_values, seed, [])  # also the autoencoder's starting centers
        if self.method in ("auto", "autoencoder"):
            # k: the plain k-means choice (stable: it does not depend on the network), refined
            # by +-1 in the learned space.
            k_plain = int(plain["best"]["k"])
            near = [k for k in plain["all_centers"] if abs(k - k_plain) <= max(self.k_refine, 0)]
            results["autoencoder"] = self._fit_autoencoder(z, near, seed, plain["all_centers"])
        if self.method in ("auto", "kmeans"):
            results["kmeans"] = plain
        if len(results) == 2:
            ae, km = results["autoencoder"]["best"], results["kmeans"]["best"]
            chosen = "autoencoder" if votes(ae, km) >= 2 else "kmeans"
        else:
            chosen = next(iter(results))
        kept = results[chosen]
        self.method_ = chosen
        self.encoder_layers_ = kept["layers"]
        self.k_ = int(kept["best"]["k"])
        self.scores_ = pd.DataFrame(
            [{"method": m, **row} for m, res in results.items() for row in res["rows"]]
        )
        self.comparison_ = {m: dict(res["best"]) for m, res in results.items()}
        self.comparison_["kept"] = chosen
        return kept

    def _fit_autoencoder(
        self, z: np.ndarray, k_values: list[int], seed: int, z_centers: dict[int, np.ndarray]
    ) -> dict[str, Any]:
        """Pretrain; choose k; fine-tune towards k centers (DCN-style); k-means on the result.

        The fine-tune starts from the centers of plain k-means on the scaled features (mapped
        into the embedding), which makes it stable across seeds. With several candidate k,
        each is fine-tuned briefly on a sample and scored, and the criteria vote.
        """
        ae = Autoencoder(
            z.shape[1],
            hidden_dim=self.hidden_dim,
            embedding_dim=self.embedding_dim,
            seed=seed,
            device=self.device,
            threads=self.threads,
        )
        self.history_ = ae.train(z, epochs=self.epochs, **self._train_options())
        rows: list[dict[str, Any]] = []
        k = k_values[0]
        if len(k_values) > 1:
            rows = self._score_candidates(ae, z, k_values, seed, z_centers)
            if rows:
                k = best_k(rows)
        layers, history = self._tune(ae, k, z, self.cluster_epochs, seed, z_centers)
        self.history_ += history
        final = self._search(encode(z, layers), [k], seed, layers)
        final["rows"] = rows + [{**r, "stage": "final"} for r in final["rows"]]
        return final

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
        k: int,
        data: np.ndarray,
        epochs: int,
        seed: int,
        z_centers: dict[int, np.ndarray],
    ) -> tuple[list, list]:
        """Encoder layers fine-tuned towards ``k`` centers for ``epochs`` (a copy of ``ae``)."""
        pretrained = ae.layers()
        layers, history = pretrained, []
        if epochs > 0:
            labels = np.argmin(squared_distances(data, z_centers[k]), axis=1)
            emb = encode(data, pretrained)
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
            layers = standardize_last(layers, encode(data, layers))
        return layers, history

    def _score_candidates(
        self,
        ae: Autoencoder,
        z: np.ndarray,
        k_values: list[int],
        seed: int,
        z_centers: dict[int, np.ndarray],
    ) -> list[dict[str, Any]]:
        """Each candidate k fine-tuned briefly on a sample and scored in its learned space."""
        rng = np.random.default_rng(seed)
        sample = (
            z[np.sort(rng.choice(len(z), self.selection_rows, replace=False))]
            if len(z) > self.selection_rows
            else z
        )
        epochs = min(self.cluster_epochs, self.selection_epochs)
        rows: list[dict[str, Any]] = []
        for k in k_values:
            layers_k, _ = self._tune(ae, k, sample, epochs, seed, z_centers)
            scored, _ = cluster_scores(
                encode(sample, layers_k),
                [k],
                n_init=self.n_init,
                seed=seed,
                silhouette_sample=self.silhouette_sample,
            )
            rows += [{**r, "stage": "selection"} for r in scored]
        return rows

    def _search(
        self, space: np.ndarray, k_values: list[int], seed: int, layers: list
    ) -> dict[str, Any]:
        rows, centers = cluster_scores(
            space,
            k_values,
            n_init=self.n_init,
            seed=seed,
            silhouette_sample=self.silhouette_sample,
        )
        if not rows:
            raise InputError(
                "k-means found fewer than 2 distinct segments: the features do not vary"
            )
        k = best_k(rows)
        best = next(r for r in rows if r["k"] == k)
        return {
            "rows": rows,
            "best": best,
            "centers": centers[k],
            "all_centers": centers,
            "layers": layers,
            "space_fn": (lambda z: encode(z, layers)) if layers else (lambda z: z),
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
