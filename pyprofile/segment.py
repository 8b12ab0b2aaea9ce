"""Learned customer segments: an autoencoder embedding of the features, then k-means on it.

:class:`Segmenter` follows scikit-learn's conventions (``fit`` / ``predict`` / ``fit_predict`` /
``transform``) and takes a feature table (pandas DataFrame or Arrow table, one row per
customer), never a connection.

Preprocessing (documented choices, all fitted on the training rows and reproduced in SQL):

* **Columns.** Every numeric or boolean column is a feature; string columns with at most
  ``max_categories`` distinct values are one-hot encoded (one 0/1 column per level, plus one
  for null when the training data has nulls; unseen levels score all zeros). Id, date and
  timestamp columns, strings with more levels, and columns that are constant on the training
  rows are dropped with a warning; ``dropped_columns_`` records why.
* **Nulls.** A numeric null is imputed with the column's training median, and a 0/1
  ``<column>__missing`` indicator is added when the training data had nulls in that column.
* **Heavy tails.** Money and counts are log-transformed, ``ln(1 + max(x, 0))``, when the
  column is non-negative and either its name says it is an amount or a count (suffixes
  ``_amount``, ``_count``, ``_events``, ``_value``, names ``frequency``, ``distinct_products``)
  or its sample skewness exceeds 1.
* **Scaling.** Robust: ``(x - median) / (IQR / 1.349)`` (the IQR scaled to match a normal
  standard deviation); when the IQR is 0 (sparse columns) the standard deviation is used.
  Scaled values are clipped to ``[-clip, clip]`` so a few extreme customers cannot claim a
  segment of their own.

Model: plain k-means runs on the scaled features for each ``k`` in ``k_range`` (its ``k`` is
the majority vote of silhouette on a sample, Davies-Bouldin and Calinski-Harabasz). A small
ReLU autoencoder (torch, seeded with a local generator, device ``"auto"``) maps the scaled
features to ``embedding_dim`` numbers and is fine-tuned with a deep-clustering loss
(reconstruction + ``cluster_weight`` x squared distance to the nearest center, DCN-style)
starting from the plain k-means centers; the embedding is standardised (folded into the last
layer) and k-means runs on it. The autoencoder's ``k`` starts from the plain k-means choice
(which does not depend on the network's random start, so it is stable across retrains) and is
refined within ``k_refine``: each candidate is fine-tuned briefly on a sample and the three
criteria, measured in the learned space, vote. The path (autoencoder or plain k-means) that wins at least two of
the three criteria, each measured in the space it clustered, is kept. Every score is in
``scores_`` (per method, k and stage) and ``comparison_``.

Scoring is done in float64 numpy with sums accumulated in a fixed order, the same order as the
SQL that :meth:`Segmenter.to_sql` writes, so the persisted ``segment_of`` macro returns exactly
the segment :meth:`Segmenter.predict` returns.
"""

from __future__ import annotations

import logging
import math
import warnings
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError, NotFittedError

log = logging.getLogger(__name__)

_LOG_SUFFIXES = ("_amount", "_count", "_events", "_value")
_LOG_NAMES = ("frequency", "distinct_products", "session_count")
_ID_SUFFIX = "_id"
_IQR_TO_STD = 1.349
_ARTIFACT_FORMAT = "pyprofile.segmenter/1"


# --------------------------------------------------------------------------- data handling
def as_frame(data: Any) -> pd.DataFrame:
    """A pandas DataFrame from an Arrow table, record batch reader or DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pa = None
    if pa is not None and isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    if pa is not None and isinstance(data, pa.Table):
        return data.to_pandas()
    raise InputError(f"expected a pandas DataFrame or Arrow table, got {type(data).__name__}")


def _numeric(series: pd.Series) -> np.ndarray:
    """Column as float64 with NaN for null (handles ints, bools, decimals, nullable dtypes)."""
    if pd.api.types.is_bool_dtype(series) or series.dtype == object:
        series = pd.to_numeric(series.astype("Float64"), errors="raise")
    return pd.to_numeric(series, errors="raise").astype("float64").to_numpy(na_value=np.nan)


def _column_kind(name: str, series: pd.Series, max_categories: int) -> tuple[str, str | None]:
    """('numeric' | 'categorical' | 'drop', reason when dropped)."""
    if name.endswith(_ID_SUFFIX):
        return "drop", "identifier"
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return "drop", "date/time column"
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric", None
    values = series.dropna()
    if len(values) and all(hasattr(v, "as_integer_ratio") for v in values.iloc[:100]):
        return "numeric", None  # decimals and plain numbers in an object column
    if len(values) and hasattr(values.iloc[0], "isoformat"):
        return "drop", "date/time column"
    n_levels = values.astype(str).nunique()
    if n_levels > max_categories:
        return "drop", f"{n_levels} distinct values (more than max_categories={max_categories})"
    return "categorical", None


def _log(x: np.ndarray) -> np.ndarray:
    """``ln(1 + max(x, 0))`` with the C library's ``log`` (what DuckDB's ``ln`` uses).

    numpy's vectorised log can differ from libm in the last bit; computing it on the distinct
    values keeps Python and SQL bit-identical at a small cost.
    """
    shifted = 1.0 + np.maximum(x, 0.0)
    uniq, inverse = np.unique(shifted, return_inverse=True)
    return np.fromiter(map(math.log, uniq.tolist()), dtype=np.float64, count=len(uniq))[inverse]


def _skewness(x: np.ndarray) -> float:
    sd = x.std()
    return float(((x - x.mean()) ** 3).mean() / sd**3) if sd > 0 else 0.0


def fit_preprocessing(
    frame: pd.DataFrame, columns: list[str], *, max_categories: int, clip: float
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Learn the preprocessing spec (JSON-able) of ``columns``; returns (spec, dropped)."""
    spec: list[dict[str, Any]] = []
    dropped: dict[str, str] = {}
    for name in columns:
        series = frame[name]
        kind, reason = _column_kind(name, series, max_categories)
        if kind == "drop":
            dropped[name] = reason or "unusable"
            continue
        if kind == "categorical":
            text = series.dropna().astype(str)
            levels = sorted(text.unique().tolist())
            has_null = bool(series.isna().any())
            if len(levels) + has_null < 2:
                dropped[name] = "constant"
                continue
            spec.append(
                {"column": name, "kind": "categorical", "levels": levels, "null_level": has_null}
            )
            continue
        x = _numeric(series)
        missing = np.isnan(x)
        present = x[~missing]
        if present.size == 0 or (np.all(present == present[0]) and not missing.any()):
            dropped[name] = "constant" if present.size else "all null"
            continue
        fill = float(np.median(present))
        x = np.where(missing, fill, x)
        lower = name.lower()
        heavy = lower.endswith(_LOG_SUFFIXES) or lower in _LOG_NAMES or _skewness(x) > 1.0
        use_log = bool(present.min() >= 0 and heavy)
        if use_log:
            x = _log(x)
        q1, center, q3 = np.quantile(x, [0.25, 0.5, 0.75])
        scale = (q3 - q1) / _IQR_TO_STD
        if not scale > 0:
            scale = x.std()
        if not scale > 0:
            if missing.any():  # constant when present: only the indicator carries information
                scale = 1.0
            else:  # pragma: no cover - caught by the constant test above
                dropped[name] = "constant"
                continue
        spec.append(
            {
                "column": name,
                "kind": "numeric",
                "log": use_log,
                "fill": fill,
                "center": float(center),
                "scale": float(scale),
                "clip": float(clip),
                "indicator": bool(missing.any()),
            }
        )
    return spec, dropped


def output_names(spec: list[dict[str, Any]]) -> list[str]:
    """Names of the preprocessed columns, in order."""
    names: list[str] = []
    for item in spec:
        col = item["column"]
        if item["kind"] == "numeric":
            names.append(col)
            if item["indicator"]:
                names.append(f"{col}__missing")
        else:
            names += [f"{col}={level}" for level in item["levels"]]
            if item["null_level"]:
                names.append(f"{col}=<null>")
    return names


def apply_preprocessing(frame: pd.DataFrame, spec: list[dict[str, Any]]) -> np.ndarray:
    """The preprocessed float64 matrix (n, n_features_out); same arithmetic as the SQL."""
    missing_cols = [item["column"] for item in spec if item["column"] not in frame.columns]
    if missing_cols:
        raise InputError(
            f"feature table ({len(frame)} rows) lacks column(s) {', '.join(missing_cols)} "
            "that the segmenter was trained on"
        )
    out: list[np.ndarray] = []
    for item in spec:
        series = frame[item["column"]]
        if item["kind"] == "numeric":
            try:
                x = _numeric(series)
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"column {item['column']} ({len(frame)} rows) must be numeric: {exc}"
                ) from exc
            missing = np.isnan(x)
            x = np.where(missing, item["fill"], x)
            if item["log"]:
                x = _log(x)
            x = np.clip((x - item["center"]) / item["scale"], -item["clip"], item["clip"])
            out.append(x)
            if item["indicator"]:
                out.append(missing.astype(np.float64))
        else:
            isnull = series.isna().to_numpy()
            text = series.astype(str).to_numpy()
            for level in item["levels"]:
                out.append(((text == level) & ~isnull).astype(np.float64))
            if item["null_level"]:
                out.append(isnull.astype(np.float64))
    return np.column_stack(out) if out else np.empty((len(frame), 0))


# --------------------------------------------------------------------------- float64 scoring
def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, relu: bool) -> np.ndarray:
    """``bias + sum_i weight[:, i] * x[:, i]`` accumulated left to right, as the SQL does."""
    acc = bias[None, :] + x[:, [0]] * weight[None, :, 0]
    for i in range(1, x.shape[1]):
        acc += x[:, [i]] * weight[None, :, i]
    return np.maximum(acc, 0.0) if relu else acc


def squared_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every row to every center, summed left to right."""
    diff = x[:, [0]] - centers[None, :, 0]
    acc = diff * diff
    for j in range(1, x.shape[1]):
        diff = x[:, [j]] - centers[None, :, j]
        acc += diff * diff
    return acc


# --------------------------------------------------------------------------- autoencoder
class _Autoencoder:
    """A small ReLU autoencoder and its training loop (seeded by a local torch.Generator)."""

    def __init__(
        self,
        n_in: int,
        *,
        hidden_dim: int,
        embedding_dim: int,
        seed: int,
        device: str,
        cpu_threads: int | None,
    ):
        import torch
        from torch import nn

        from pyprofile.device import resolve_device

        self.torch, self.nn = torch, nn
        self.cpu_threads = cpu_threads
        self.device = resolve_device(device)
        self.gen = torch.Generator().manual_seed(seed)
        self.encoder = nn.Sequential(
            nn.Linear(n_in, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embedding_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, n_in)
        )
        with torch.no_grad():  # seeded init from the local generator (PyTorch's default ranges)
            for layer in [*self.encoder, *self.decoder]:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=self.gen)
                    layer.bias.uniform_(-bound, bound, generator=self.gen)
        self.encoder.to(self.device)
        self.decoder.to(self.device)

    def train(
        self,
        z: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        noise: float = 0.0,
        centers: np.ndarray | None = None,
        gamma: float = 0.0,
        phase: str = "pretrain",
        verbose: bool = False,
    ) -> list[dict[str, float]]:
        """Minimise reconstruction MSE (+ ``gamma`` x squared distance to the nearest center).

        With ``centers`` this is the deep-clustering fine-tune (DCN-style): embeddings are pulled
        towards their k-means centers, which are learned jointly.
        """
        torch, nn = self.torch, self.nn
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        mu = None
        if centers is not None:
            mu = nn.Parameter(torch.as_tensor(centers, dtype=torch.float32, device=self.device))
            params.append(mu)
        optimiser = torch.optim.Adam(params, lr=learning_rate)
        data = torch.as_tensor(z, dtype=torch.float32)
        data.shape[0]
        history: list[dict[str, float]] = []
        self.encoder.train()
        self.decoder.train()
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and self.cpu_threads:
            # The network is tiny: one thread is fastest and does not oversubscribe the CPU.
            torch.set_num_threads(self.cpu_threads)
        try:
            self._loop(
                data, history, optimiser, epochs, batch_size, noise, mu, gamma, phase, verbose
            )
        finally:
            torch.set_num_threads(threads)
        self.encoder.eval()
        self.decoder.eval()
        return history

    def _loop(self, data, history, optimiser, epochs, batch_size, noise, mu, gamma, phase, verbose):
        torch, nn = self.torch, self.nn
        n = data.shape[0]
        for epoch in range(epochs):
            order = torch.randperm(n, generator=self.gen)
            total = torch.zeros((), device=self.device)
            total_c = torch.zeros((), device=self.device)
            for start in range(0, n, batch_size):
                batch = data[order[start : start + batch_size]].to(self.device)
                noisy = batch
                if noise > 0:  # denoising: reconstruct the clean row from a perturbed one
                    noisy = batch + noise * torch.randn(
                        batch.shape, generator=self.gen, dtype=batch.dtype
                    ).to(self.device)
                emb = self.encoder(noisy)
                loss = nn.functional.mse_loss(self.decoder(emb), batch)
                total += loss.detach() * batch.shape[0]
                if mu is not None:
                    closest = torch.cdist(emb, mu).pow(2).min(dim=1).values.mean()
                    total_c += closest.detach() * batch.shape[0]
                    loss = loss + gamma * closest
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            record = {"phase": phase, "epoch": epoch + 1, "loss": float(total.item() / n)}
            if mu is not None:
                record["cluster_loss"] = float(total_c.item() / n)
            history.append(record)
            if verbose:
                log.info("autoencoder %s epoch %d/%d  %s", phase, epoch + 1, epochs, record)

    def clone(self, seed: int) -> _Autoencoder:
        """An independent copy of the current weights, with its own generator."""
        import copy

        other = copy.copy(self)
        other.encoder = copy.deepcopy(self.encoder)
        other.decoder = copy.deepcopy(self.decoder)
        other.gen = self.torch.Generator().manual_seed(seed)
        return other

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Encoder weights and biases as float64 arrays (what SQL and predict use)."""
        return [
            (
                layer.weight.detach().cpu().numpy().astype(np.float64),
                layer.bias.detach().cpu().numpy().astype(np.float64),
            )
            for layer in self.encoder
            if isinstance(layer, self.nn.Linear)
        ]


# --------------------------------------------------------------------------- k selection
def _cluster_scores(
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


def _best_k(rows: list[dict[str, float]]) -> int:
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


def _votes(a: dict[str, float], b: dict[str, float]) -> int:
    """How many of the three criteria ``a`` wins over ``b``."""
    return (
        int(a["silhouette"] > b["silhouette"])
        + int(a["davies_bouldin"] < b["davies_bouldin"])
        + int(a["calinski_harabasz"] > b["calinski_harabasz"])
    )


# --------------------------------------------------------------------------- SQL helpers
def sql_number(value: float) -> str:
    """A DOUBLE literal that round-trips exactly (scientific notation is DOUBLE in DuckDB)."""
    text = f"{float(value):.17e}"
    return f"({text})" if text.startswith("-") else text


def sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _preprocessing_sql(spec: list[dict[str, Any]]) -> list[str]:
    from pyprofile.warehouse import quote

    exprs: list[str] = []
    for item in spec:
        col = quote(item["column"])
        if item["kind"] == "numeric":
            x = f"coalesce(CAST({col} AS DOUBLE), {sql_number(item['fill'])})"
            if item["log"]:
                x = f"ln(1.0e0 + greatest({x}, 0.0e0))"
            z = f"(({x} - {sql_number(item['center'])}) / {sql_number(item['scale'])})"
            c = item["clip"]
            exprs.append(f"least(greatest({z}, {sql_number(-c)}), {sql_number(c)})")
            if item["indicator"]:
                exprs.append(f"CASE WHEN {col} IS NULL THEN 1.0e0 ELSE 0.0e0 END")
        else:
            for level in item["levels"]:
                exprs.append(
                    f"CASE WHEN CAST({col} AS VARCHAR) = {sql_string(level)} "
                    "THEN 1.0e0 ELSE 0.0e0 END"
                )
            if item["null_level"]:
                exprs.append(f"CASE WHEN {col} IS NULL THEN 1.0e0 ELSE 0.0e0 END")
    return exprs


def _dense_sql(inputs: list[str], weight: np.ndarray, bias: np.ndarray, *, relu: bool) -> list[str]:
    """One expression per output unit: ``bias + w_1 * x_1 + ...`` (left to right, as Python)."""
    exprs = []
    for j in range(weight.shape[0]):
        terms = " + ".join(f"{sql_number(weight[j, i])} * {x}" for i, x in enumerate(inputs))
        expr = f"{sql_number(bias[j])} + {terms}"
        exprs.append(f"greatest({expr}, 0.0e0)" if relu else f"({expr})")
    return exprs


def _distance_sql(inputs: list[str], centers: np.ndarray) -> list[str]:
    """Squared distance to each center, summed left to right (as Python)."""
    exprs = []
    for center in centers:
        terms = []
        for x, c in zip(inputs, center, strict=True):
            diff = f"({x} - {sql_number(c)})"
            terms.append(f"{diff} * {diff}")
        exprs.append(" + ".join(terms))
    return exprs


def _stage_sql(
    spec: list[dict[str, Any]], layers: list, centers: np.ndarray, ref: Any
) -> list[list[str]]:
    """Expressions of every scoring stage; ``ref(stage, i)`` names input i of a stage."""
    stages = [_preprocessing_sql(spec)]
    for i, (weight, bias) in enumerate(layers):
        inputs = [ref(i, j) for j in range(weight.shape[1])]
        stages.append(_dense_sql(inputs, weight, bias, relu=i < len(layers) - 1))
    inputs = [ref(len(layers), j) for j in range(centers.shape[1])]
    stages.append(_distance_sql(inputs, centers))
    return stages


def _template(name: str) -> str:
    """Read a template from ``udfs/`` (source checkout) or the packaged copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "udfs" / name, here / "_udfs" / name):
        if candidate.is_file():
            return candidate.read_text()
    return resources.files("pyprofile").joinpath("_udfs", name).read_text()  # pragma: no cover


def render_template(name: str, **values: str) -> str:
    """Fill a ``udfs/`` template; lines starting with ``--`` are documentation and dropped."""
    text = "\n".join(line for line in _template(name).splitlines() if not line.startswith("--"))
    return Template(text).substitute(values).strip()


# --------------------------------------------------------------------------- estimator
class Segmenter:
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
    cpu_threads : torch threads while training on CPU (restored afterwards); None leaves
        torch's setting. One thread is fastest for this small network.
    """

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
        cpu_threads: int | None = 1,
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
        self.cpu_threads = cpu_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ params
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Segmenter:
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

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
        n = len(frame)
        k_values = self._validate(n)
        spec, dropped = fit_preprocessing(
            frame,
            self._feature_columns(frame),
            max_categories=self.max_categories,
            clip=self.clip,
        )
        for name, reason in dropped.items():
            warnings.warn(f"segmenter: column {name} dropped ({reason})", UserWarning, stacklevel=2)
        if not spec:
            raise InputError(f"feature table ({n} rows) has no usable feature column")
        self.preprocessing_ = spec
        self.dropped_columns_ = dropped
        self.feature_names_in_ = [item["column"] for item in spec]
        self.feature_names_out_ = output_names(spec)
        z_all = apply_preprocessing(frame, spec)

        rng = np.random.default_rng(self.random_state)
        train_idx = (
            np.sort(rng.choice(n, self.max_train_rows, replace=False))
            if n > self.max_train_rows
            else np.arange(n)
        )
        z = z_all[train_idx]
        seed = int(rng.integers(2**31 - 1))
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
            chosen = "autoencoder" if _votes(ae, km) >= 2 else "kmeans"
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

        space = kept["space_fn"](z_all)
        centers = kept["centers"]
        labels = np.argmin(squared_distances(space, centers), axis=1)
        self._assign_ids(z_all, labels, centers, previous, previous_centroids, frame)
        self._fit_map(space[train_idx])
        return self

    def _fit_autoencoder(
        self, z: np.ndarray, k_values: list[int], seed: int, z_centers: dict[int, np.ndarray]
    ) -> dict[str, Any]:
        """Pretrain; choose k; fine-tune towards k centers (DCN-style); k-means on the result.

        The fine-tune starts from the centers of plain k-means on the scaled features (mapped
        into the embedding), which makes it stable across seeds. With several candidate k,
        each is fine-tuned briefly on a sample and scored, and the criteria vote.
        """
        ae = _Autoencoder(
            z.shape[1],
            hidden_dim=self.hidden_dim,
            embedding_dim=self.embedding_dim,
            seed=seed,
            device=self.device,
            cpu_threads=self.cpu_threads,
        )
        train = {
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "noise": self.noise,
            "verbose": self.verbose,
        }
        self.history_ = ae.train(z, epochs=self.epochs, **train)
        pretrained = ae.layers()

        def tuned(k: int, data: np.ndarray, epochs: int) -> tuple[list, list]:
            layers, history = pretrained, []
            if epochs > 0:
                labels = np.argmin(squared_distances(data, z_centers[k]), axis=1)
                emb = _encode(data, pretrained)
                init = np.vstack(
                    [
                        emb[labels == c].mean(axis=0) if (labels == c).any() else emb.mean(axis=0)
                        for c in range(k)
                    ]
                )
                clone = ae.clone(seed)
                history = clone.train(
                    data,
                    epochs=epochs,
                    centers=init,
                    gamma=self.cluster_weight,
                    phase=f"cluster k={k}",
                    **train,
                )
                layers = clone.layers()
            if self.standardize_embedding:
                layers = _standardize_last(layers, _encode(data, layers))
            return layers, history

        rows: list[dict[str, Any]] = []
        best_k = k_values[0]
        if len(k_values) > 1:
            rng = np.random.default_rng(seed)
            sample = (
                z[np.sort(rng.choice(len(z), self.selection_rows, replace=False))]
                if len(z) > self.selection_rows
                else z
            )
            for k in k_values:
                layers_k, _ = tuned(k, sample, min(self.cluster_epochs, self.selection_epochs))
                scored, _ = _cluster_scores(
                    _encode(sample, layers_k),
                    [k],
                    n_init=self.n_init,
                    seed=seed,
                    silhouette_sample=self.silhouette_sample,
                )
                rows += [{**r, "stage": "selection"} for r in scored]
            if rows:
                best_k = _best_k(rows)
        layers, history = tuned(best_k, z, self.cluster_epochs)
        self.history_ += history
        final = self._search(_encode(z, layers), [best_k], seed, layers)
        final["rows"] = rows + [{**r, "stage": "final"} for r in final["rows"]]
        return final

    def _search(
        self, space: np.ndarray, k_values: list[int], seed: int, layers: list
    ) -> dict[str, Any]:
        rows, centers = _cluster_scores(
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
        best_k = _best_k(rows)
        best = next(r for r in rows if r["k"] == best_k)
        return {
            "rows": rows,
            "best": best,
            "centers": centers[best_k],
            "all_centers": centers,
            "layers": layers,
            "space_fn": (lambda z: _encode(z, layers)) if layers else (lambda z: z),
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
        from scipy.optimize import linear_sum_assignment

        k = centers.shape[0]
        sizes = np.bincount(labels, minlength=k)
        means = np.vstack(
            [z_all[labels == c].mean(axis=0) if sizes[c] else centers[c] * np.nan for c in range(k)]
        )
        prev_ids: np.ndarray | None = None
        prev_means: np.ndarray | None = None
        if previous is not None:
            previous._check_fitted()
            prev_labels = previous.predict(frame)
            prev_ids = np.unique(prev_labels)
            prev_means = np.vstack([z_all[prev_labels == p].mean(axis=0) for p in prev_ids])
        elif previous_centroids is not None:
            pc = as_frame(previous_centroids)
            common = [c for c in self.feature_names_out_ if c in pc.columns]
            if not common:
                raise InputError(
                    "previous_centroids share no column with the preprocessed features"
                )
            idx = [self.feature_names_out_.index(c) for c in common]
            prev_ids = pc.index.to_numpy().astype(int)
            prev_means = pc[common].to_numpy(dtype=np.float64)
            means_cmp = means[:, idx]
        if prev_ids is None:
            order = np.argsort(-sizes, kind="stable")  # id 0 = largest segment
            ids = np.empty(k, dtype=np.int64)
            ids[order] = np.arange(k)
            self.id_matching_ = {}
        else:
            cmp = means if previous is not None else means_cmp
            cost = np.sqrt(((np.nan_to_num(cmp)[:, None, :] - prev_means[None]) ** 2).sum(-1))
            rows, cols = linear_sum_assignment(cost)
            ids = np.full(k, -1, dtype=np.int64)
            ids[rows] = prev_ids[cols]
            free = (i for i in range(k + len(prev_ids)) if i not in set(prev_ids.tolist()))
            for c in np.argsort(-sizes, kind="stable"):
                if ids[c] < 0:
                    ids[c] = next(free)
            self.id_matching_ = {
                int(ids[r]): float(cost[r, c]) for r, c in zip(rows, cols, strict=True)
            }
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

    def _fit_map(self, space: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        n_comp = min(2, space.shape[1])
        pca = PCA(n_components=n_comp, svd_solver="full").fit(space)
        components = np.zeros((2, space.shape[1]))
        components[:n_comp] = pca.components_
        self.map_mean_ = pca.mean_.astype(np.float64)
        self.map_components_ = components

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("this Segmenter is not fitted yet: call fit() first")

    def transform(self, X: Any) -> np.ndarray:
        """The space the segments live in (the embedding, or the scaled features), float64."""
        self._check_fitted()
        return _encode(apply_preprocessing(as_frame(X), self.preprocessing_), self.encoder_layers_)

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

    # ------------------------------------------------------------------ SQL export
    def to_sql(self) -> str:
        """Body of the ``segment_of(<feature_names_in_>)`` macro: the full scoring chain in SQL.

        Each stage is computed once per row by binding it to a lambda variable
        (``list_transform([[...]], lambda s: ...)[1]``), so the expression stays linear in
        the model size. Needs DuckDB >= 1.3 (``lambda`` syntax).
        """
        self._check_fitted()
        stages = _stage_sql(
            self.preprocessing_,
            self.encoder_layers_,
            self.cluster_centers_,
            lambda stage, i: f"s{stage}[{i + 1}]",
        )
        names = [f"s{i}" for i in range(len(stages) - 1)] + ["d"]
        opening = "".join(
            f"(list_transform([[{', '.join(exprs)}]], lambda {var}: "
            for exprs, var in zip(stages, names, strict=True)
        )
        return render_template(
            "segment_of.sql.tmpl",
            stages=opening,
            segment_ids=", ".join(str(int(i)) for i in self.segment_ids_),
            close=")[1])" * len(stages),
        )

    def to_table_sql(self) -> str:
        """Body of the table macro ``segment_table(table_name)``: bulk scoring in SQL.

        Returns every column of the named table plus ``segment_id`` and
        ``distance_to_centroid``; one CTE per stage with plain columns, so DuckDB vectorises
        it much better than the scalar macro. Same arithmetic, same results as ``predict``.
        """
        from pyprofile.warehouse import quote

        self._check_fitted()

        def col(stage: int, i: int) -> str:
            return quote(f"__seg_{stage}_{i}")

        stages = _stage_sql(self.preprocessing_, self.encoder_layers_, self.cluster_centers_, col)
        ctes, internal, source = [], [], "query_table(tbl)"
        for stage, exprs in enumerate(stages):
            names = [col(stage, i) for i in range(len(exprs))]
            internal += names
            columns = ", ".join(f"{e} as {n}" for e, n in zip(exprs, names, strict=True))
            ctes.append(f"__seg_stage{stage} as (select *, {columns} from {source})")
            source = f"__seg_stage{stage}"
        dists = "[" + ", ".join(col(len(stages) - 1, i) for i in range(len(stages[-1]))) + "]"
        return render_template(
            "segment_table.sql.tmpl",
            ctes=", ".join(ctes),
            internal=", ".join(internal),
            segment_ids=", ".join(str(int(i)) for i in self.segment_ids_),
            distances=dists,
            last=source,
        )

    @property
    def macro_params(self) -> list[str]:
        """Argument names of the generated macro: the raw feature columns, in order."""
        self._check_fitted()
        return list(self.feature_names_in_)

    # ------------------------------------------------------------------ persistence
    def to_artifact(self) -> bytes:
        """Everything predict needs as a pickle-free registry artifact."""
        from pyprofile.registry import pack

        self._check_fitted()
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
        meta = {
            "format": _ARTIFACT_FORMAT,
            "params": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
            },
            "preprocessing": self.preprocessing_,
            "dropped_columns": self.dropped_columns_,
            "feature_names_out": self.feature_names_out_,
            "method": self.method_,
            "k": self.k_,
            "n_layers": len(self.encoder_layers_),
            "segment_sizes": {str(k): v for k, v in self.segment_sizes_.items()},
            "comparison": self.comparison_,
            "history": self.history_,
        }
        return pack(arrays, meta)

    @classmethod
    def from_artifact(cls, blob: bytes) -> Segmenter:
        """Rebuild a fitted (predict-only) Segmenter from :meth:`to_artifact` bytes."""
        from pyprofile.registry import unpack

        arrays, meta = unpack(blob)
        if meta.get("format") != _ARTIFACT_FORMAT:
            raise InputError(f"not a segmenter artifact (format {meta.get('format')!r})")
        params = dict(meta["params"])
        for key in ("k_range", "exclude"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        self = cls(**params)
        self.preprocessing_ = meta["preprocessing"]
        self.dropped_columns_ = meta["dropped_columns"]
        self.feature_names_in_ = [item["column"] for item in self.preprocessing_]
        self.feature_names_out_ = meta["feature_names_out"]
        self.method_ = meta["method"]
        self.k_ = meta["k"]
        self.comparison_ = meta["comparison"]
        self.history_ = meta["history"]
        self.segment_sizes_ = {int(k): v for k, v in meta["segment_sizes"].items()}
        self.encoder_layers_ = [
            (arrays[f"encoder_{i}_weight"], arrays[f"encoder_{i}_bias"])
            for i in range(meta["n_layers"])
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
        return self


def _encode(z: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Run the encoder layers (ReLU between, linear last) in float64; identity without layers."""
    for i, (weight, bias) in enumerate(layers):
        z = dense(z, weight, bias, relu=i < len(layers) - 1)
    return z


def _standardize_last(
    layers: list[tuple[np.ndarray, np.ndarray]], embedding: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fold ``(e - mean) / std`` of the embedding into the last encoder layer's weights."""
    mean, std = embedding.mean(axis=0), embedding.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    weight, bias = layers[-1]
    return [*layers[:-1], (weight / std[:, None], (bias - mean) / std)]
