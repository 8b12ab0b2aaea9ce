"""How good are synthetic rows: utility (TSTR vs TRTR), privacy (DCR) and a fast in-memory
estimate of the fidelity score (the full fidelity report runs as SQL in the warehouse, see
:mod:`pyprofile.warehouse.quality`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from pyprofile.errors import InputError

NUMERIC_KINDS = ("numerical", "datetime")
DISCRETE_KINDS = ("categorical", "boolean")
NULL_TOKEN = "\x00null"
BINS = 10


def mean_score(values) -> float:
    """Mean of the scores that are defined (None and NaN left out); NaN when none is."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


# ---------------------------------------------------------------------- utility and privacy
def _features(frames: list[pd.DataFrame], columns: dict[str, str], reference: pd.DataFrame):
    """Numeric matrix for models and distances: numeric columns scaled to the reference's
    [0, 1] range with a null flag, categories one-hot scaled so one mismatch is distance 1."""
    blocks = [[] for _ in frames]
    for c, kind in columns.items():
        if kind in NUMERIC_KINDS:
            ref = _to_float(reference[c])
            lo, hi = np.nanmin(ref), np.nanmax(ref)
            span = hi - lo if hi > lo else 1.0
            for out, df in zip(blocks, frames, strict=True):
                x = (_to_float(df[c]) - lo) / span
                out.append(np.nan_to_num(x, nan=0.0)[:, None])
                if np.isnan(ref).any():
                    out.append(np.isnan(x)[:, None].astype(float))
        else:
            cats = pd.Index(
                reference[c].astype("object").where(reference[c].notna(), None).unique()
            )
            for out, df in zip(blocks, frames, strict=True):
                values = df[c].astype("object").where(df[c].notna(), None)
                codes = cats.get_indexer(values)
                onehot = np.zeros((len(df), len(cats)))
                ok = codes >= 0
                onehot[np.flatnonzero(ok), codes[ok]] = 1.0 / math.sqrt(2)
                out.append(onehot)
    return [
        np.hstack(b) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames, strict=True)
    ]


def _to_float(series: pd.Series) -> np.ndarray:
    if (
        pd.api.types.is_datetime64_any_dtype(series)
        or series.dtype == object
        and len(series.dropna())
        and hasattr(series.dropna().iloc[0], "toordinal")
    ):
        return pd.to_datetime(series).astype("int64").to_numpy(dtype=float) / 86400e9
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def utility(train, holdout, synthetic, columns: dict[str, str], label: str, *, random_state=0):
    """ROC AUC on held-out real rows of a classifier trained on synthetic rows (TSTR) vs one
    trained on the real training rows (TRTR)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    if label not in columns:
        raise InputError(f"label column {label} is not among the compared columns")
    feats = {c: k for c, k in columns.items() if c != label}
    x_train, x_hold, x_syn = _features([train, holdout, synthetic], feats, train)
    classes = pd.Index(train[label].dropna().unique())
    if len(classes) < 2:
        raise InputError(f"label column {label} has fewer than two classes in the training rows")
    y_train, y_hold, y_syn = (classes.get_indexer(df[label]) for df in (train, holdout, synthetic))
    positive = int(np.argmin(np.bincount(y_train[y_train >= 0])))  # the rarer class

    def auc(x, y):
        keep = y >= 0
        if len(np.unique(y[keep])) < 2:
            return float("nan")
        model = HistGradientBoostingClassifier(max_iter=200, random_state=random_state)
        model.fit(x[keep], y[keep])
        hold = y_hold >= 0
        proba = model.predict_proba(x_hold[hold])
        if len(classes) == 2:
            col = list(model.classes_).index(positive) if positive in model.classes_ else None
            if col is None:
                return float("nan")
            return float(roc_auc_score(y_hold[hold] == positive, proba[:, col]))
        return float(roc_auc_score(y_hold[hold], proba, multi_class="ovr", labels=model.classes_))

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):  # OpenMP stalls on busy machines
        tstr, trtr = auc(x_syn, y_syn), auc(x_train, y_train)
    label_rate = {
        "real_label_rate": float(np.mean(y_train == positive)),
        "synthetic_label_rate": float(np.mean(y_syn == positive)),
    }
    return {"tstr_auc": tstr, "trtr_auc": trtr, "tstr_trtr_ratio": tstr / trtr, **label_rate}


def distances_to_closest(train, others: list, columns: dict[str, str]) -> list[np.ndarray]:
    """Distance of each row of each frame in ``others`` to its closest training row."""
    from sklearn.neighbors import NearestNeighbors

    mats = _features([train, *others], columns, train)
    nn = NearestNeighbors(n_neighbors=1).fit(mats[0])
    return [
        nn.kneighbors(m, return_distance=True)[0][:, 0] if len(m) else m[:, 0] for m in mats[1:]
    ]


def privacy(train, holdout, synthetic, columns, *, max_rows=5000, random_state=0):
    """Distance to closest training record (DCR) of synthetic rows vs of held-out real rows,
    and the share of exact copies of training rows in each."""
    rng = np.random.default_rng(random_state)

    def sub(df):
        if len(df) <= max_rows:
            return df
        return df.iloc[np.sort(rng.choice(len(df), max_rows, replace=False))]

    d_syn, d_hold = distances_to_closest(train, [sub(synthetic), sub(holdout)], columns)
    return {
        "dcr_synthetic_median": float(np.median(d_syn)),
        "dcr_synthetic_p5": float(np.percentile(d_syn, 5)),
        "dcr_holdout_median": float(np.median(d_hold)),
        "dcr_holdout_p5": float(np.percentile(d_hold, 5)),
        "exact_copy_share_synthetic": float(np.mean(d_syn < 1e-9)),
        "exact_copy_share_holdout": float(np.mean(d_hold < 1e-9)),
    }


def privacy_filter(train, holdout, synthetic, columns) -> np.ndarray:
    """Mask of synthetic rows at least as far from every real training row as the held-out
    real rows' 5th-percentile distance (rows closer than that are dropped)."""
    d_syn, d_hold = distances_to_closest(train, [synthetic, holdout], columns)
    return d_syn >= np.percentile(d_hold, 5)


# ---------------------------------------------------------------------- in-memory estimate
class QualityEstimator:
    """The same Quality Score computed in memory on samples (numpy), for choosing the best
    generator checkpoint during training; the warehouse report stays the SQL one."""

    def __init__(
        self,
        real: pd.DataFrame,
        columns: dict[str, str],
        *,
        correlation_threshold: float = 0.5,
        association_threshold: float = 0.3,
    ):
        self.columns = columns
        self.names = list(columns)
        self.numeric = [c for c in self.names if columns[c] in NUMERIC_KINDS]
        self.categories = {
            c: pd.Index(real[c].dropna().unique()) for c in self.names if c not in self.numeric
        }
        self.real_codes, self.width = self._codes(real)
        self.real_numeric = {c: np.sort(_dropna(_to_float(real[c]))) for c in self.numeric}
        self.real_corr = self._corr(real)
        pairs = list(itertools.combinations(range(len(self.names)), 2))
        self.corr_pairs, self.cont_pairs = [], []
        for i, j in pairs:
            a, b = self.names[i], self.names[j]
            if a in self.numeric and b in self.numeric:
                r = self.real_corr.loc[a, b]
                if correlation_threshold <= 0 or abs(r) > correlation_threshold:
                    self.corr_pairs.append((a, b))
            elif association_threshold <= 0 or self._cramer(i, j) > association_threshold:
                self.cont_pairs.append((i, j))
        self.real_joint = {p: self._joint(self.real_codes, *p) for p in self.cont_pairs}

    def _codes(self, df):
        """Per column small integer codes: categories (null last) or SDMetrics' 11 bins."""
        codes, width = [], 13
        for c in self.names:
            if c in self.numeric:
                x = _to_float(df[c])
                ok = ~np.isnan(x)
                lo, hi = (x[ok].min(), x[ok].max()) if ok.any() else (0.0, 0.0)
                if hi > lo:
                    b = np.minimum(np.floor((x - lo) / (hi - lo) * BINS) + 1, BINS)
                    b = np.where(x >= hi, BINS + 1, b)
                else:
                    b = np.full(len(x), 6.0)
                codes.append(np.where(ok, b, BINS + 1).astype(np.int64))
            else:
                cats = self.categories[c]
                idx = cats.get_indexer(df[c].astype("object").where(df[c].notna(), None))
                idx = np.where(df[c].isna().to_numpy(), len(cats), idx)
                idx = np.where(idx < 0, len(cats) + 1, idx)  # unseen category
                codes.append(idx.astype(np.int64))
                width = max(width, len(cats) + 2)
        return np.stack(codes, 1), width

    def _joint(self, codes, i, j):
        joint = codes[:, i] * self.width + codes[:, j]
        return np.bincount(joint, minlength=self.width**2) / len(codes)

    def _cramer(self, i, j):
        table = self._joint(self.real_codes, i, j).reshape(self.width, self.width)
        table = table[table.sum(1) > 0][:, table.sum(0) > 0]
        if min(table.shape) < 2:
            return float("nan")
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True)
        phi2 = (table**2 / expected).sum() - 1
        return float(np.sqrt(max(phi2, 0) / (min(table.shape) - 1)))

    def _corr(self, df):
        num = pd.DataFrame({c: _to_float(df[c]) for c in self.numeric})
        return num.corr()

    def score(self, synthetic: pd.DataFrame) -> dict[str, float]:
        shapes = []
        syn_codes, _ = self._codes(synthetic)
        for k, c in enumerate(self.names):
            if c in self.numeric:
                x = _dropna(_to_float(synthetic[c]))
                shapes.append(1 - ks_statistic(self.real_numeric[c], x) if len(x) else np.nan)
            else:
                real = np.bincount(self.real_codes[:, k], minlength=self.width)[:-1]
                syn = np.bincount(syn_codes[:, k], minlength=self.width)[:-1]
                n_cat = len(self.categories[c])
                real = np.delete(real, n_cat)  # nulls are dropped in TVComplement
                syn = np.delete(syn, n_cat)
                if real.sum() and syn.sum():
                    shapes.append(1 - 0.5 * np.abs(real / real.sum() - syn / syn.sum()).sum())
        pairs = []
        if self.corr_pairs:
            corr = self._corr(synthetic)
            pairs += [
                1 - abs(self.real_corr.loc[a, b] - corr.loc[a, b]) / 2 for a, b in self.corr_pairs
            ]
        pairs += [
            1 - 0.5 * np.abs(self.real_joint[p] - self._joint(syn_codes, *p)).sum()
            for p in self.cont_pairs
        ]
        s, p = mean_score(shapes), mean_score(pairs)
        return {"score": mean_score([s, p]), "column_shapes": s, "column_pair_trends": p}


def _dropna(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x)]


def ks_statistic(sorted_real: np.ndarray, x: np.ndarray) -> float:
    """Two-sample KS statistic (as scipy's ks_2samp, exact for ties)."""
    x = np.sort(x)
    grid = np.concatenate([sorted_real, x])
    cdf_r = np.searchsorted(sorted_real, grid, side="right") / len(sorted_real)
    cdf_s = np.searchsorted(x, grid, side="right") / len(x)
    return float(np.max(np.abs(cdf_r - cdf_s)))


def column_kinds(table, *, exclude=(), max_discrete_integers: int = 10) -> dict[str, str]:
    """SDMetrics kind of every column of an Arrow table, by the synthesizer's own rules: text
    is categorical, booleans boolean, dates and timestamps datetime, integers with at most
    ``max_discrete_integers`` values categorical, other numbers numerical. Columns that are
    null everywhere, and ``exclude``, are left out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kinds = {}
    for field in table.schema:
        name, t = field.name, field.type
        if name in exclude or table[name].null_count == table.num_rows:
            continue
        if pa.types.is_boolean(t):
            kinds[name] = "boolean"
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            kinds[name] = "categorical"
        elif pa.types.is_date(t) or pa.types.is_timestamp(t):
            kinds[name] = "datetime"
        elif pa.types.is_integer(t):
            few = pc.count_distinct(table[name]).as_py() <= max_discrete_integers
            kinds[name] = "categorical" if few else "numerical"
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[name] = "numerical"
    return kinds
