"""How good are synthetic rows: fidelity in SQL, utility (TSTR vs TRTR) and privacy (DCR).

Fidelity follows SDMetrics' Quality Report and runs as SQL in the warehouse: Column Shapes
(KSComplement for numeric and date columns, TVComplement for categorical ones) and Column Pair
Trends (CorrelationSimilarity for numeric pairs, ContingencySimilarity for categorical and mixed
pairs, numeric columns cut in 10 equal-width bins of their own table's range, as SDMetrics
does); the score is the mean of the two property means. As in SDMetrics 0.32's report, a pair
counts toward Column Pair Trends only when the real data shows a trend to keep: |Pearson r| above
0.5 for numeric pairs, Cramer's V above 0.3 for the others (both thresholds are parameters;
0 counts every pair). Every pair's score is kept in the details with its ``counted`` flag.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.warehouse import qualified, quote

NUMERIC_KINDS = ("numerical", "datetime")
DISCRETE_KINDS = ("categorical", "boolean")
NULL_TOKEN = "\x00null"
BINS = 10


@dataclass
class QualityReport:
    """SDMetrics-style quality: overall score, its two properties and every item's score."""

    score: float
    column_shapes: float
    column_pair_trends: float
    details: list[dict] = field(default_factory=list)

    def as_rows(self) -> list[dict]:
        """One row per item plus the three summary rows (metric_group, metric, columns, score)."""
        rows = [
            _row("overall", "QualityScore", None, None, self.score),
            _row("column_shapes", "mean", None, None, self.column_shapes),
            _row("column_pair_trends", "mean", None, None, self.column_pair_trends),
        ]
        return rows + self.details


def _row(group, metric, c1, c2, score, counted=True):
    return {
        "metric_group": group,
        "metric": metric,
        "column_1": c1,
        "column_2": c2,
        "score": score,
        "counted": counted,
    }


def _mean(values) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _as_float(value) -> float:
    return float("nan") if value is None else float(value)


def _numeric_expr(column: str, kind: str) -> str:
    q = quote(column)
    return f"epoch(cast({q} as timestamp))" if kind == "datetime" else f"cast({q} as double)"


def quality_report(
    wh,
    real: str,
    synthetic: str,
    columns: dict[str, str],
    *,
    correlation_threshold: float = 0.5,
    association_threshold: float = 0.3,
) -> QualityReport:
    """Compute the quality report of table ``synthetic`` against table ``real`` in SQL.

    ``columns`` maps each column to compare to its kind: ``numerical``, ``datetime``,
    ``categorical`` or ``boolean`` (as in SDMetrics metadata).
    """
    bad = {c: k for c, k in columns.items() if k not in NUMERIC_KINDS + DISCRETE_KINDS}
    if bad:
        raise InputError(
            f"unknown column kinds {bad}: use numerical, datetime, categorical, boolean"
        )
    if not columns:
        raise InputError("quality_report needs at least one column")
    r, s = qualified(real), qualified(synthetic)
    numeric = [c for c, k in columns.items() if k in NUMERIC_KINDS]
    discrete = [c for c, k in columns.items() if k in DISCRETE_KINDS]
    details = []
    shapes = {**_ks(wh, r, s, numeric, columns), **_tv(wh, r, s, discrete)}
    for c in columns:
        metric = "KSComplement" if c in numeric else "TVComplement"
        details.append(_row("column_shapes", metric, c, None, shapes.get(c, float("nan"))))
    pairs = list(itertools.combinations(columns, 2))
    num_pairs = [p for p in pairs if p[0] in numeric and p[1] in numeric]
    other_pairs = [p for p in pairs if not (p[0] in numeric and p[1] in numeric)]
    corr = _correlations(wh, r, s, num_pairs, columns)
    cont = _contingency(wh, r, s, other_pairs, columns)
    for p in pairs:
        if p in corr:
            score, real_r = corr[p]
            counted = correlation_threshold <= 0 or abs(real_r) > correlation_threshold
            details.append(_row("column_pair_trends", "CorrelationSimilarity", *p, score, counted))
        else:
            score, cramer = cont[p]
            counted = association_threshold <= 0 or cramer > association_threshold
            details.append(_row("column_pair_trends", "ContingencySimilarity", *p, score, counted))
    shape_score = _mean(d["score"] for d in details if d["metric_group"] == "column_shapes")
    pair_score = _mean(
        d["score"] for d in details if d["metric_group"] == "column_pair_trends" and d["counted"]
    )
    overall = _mean([shape_score, pair_score])
    return QualityReport(overall, shape_score, pair_score, details)


def _unpivot(table, exprs: list[str], alias) -> str:
    cols = ", ".join(f"{e} as c{i}" for i, e in enumerate(exprs))
    names = ", ".join(f"c{i}" for i in range(len(exprs)))
    return f"(unpivot (select {cols} from {table}) on {names} into name col value v) as {alias}"


def _ks(wh, r, s, numeric, kinds) -> dict[str, float]:
    """1 - two-sample KS statistic per numeric column (nulls dropped), all columns in one query."""
    if not numeric:
        return {}
    exprs = [_numeric_expr(c, kinds[c]) for c in numeric]
    sql = f"""
    with rr as (select col, v from {_unpivot(r, exprs, "u")}),
    ss as (select col, v from {_unpivot(s, exprs, "u")}),
    nr as (select col, count(*) as n from rr group by col),
    ns as (select col, count(*) as n from ss group by col),
    pts as (
        select col, v, count(*) as cr, 0 as cs from rr group by col, v
        union all
        select col, v, 0 as cr, count(*) as cs from ss group by col, v
    ),
    agg as (select col, v, sum(cr) as cr, sum(cs) as cs from pts group by col, v),
    cdf as (
        select col,
            sum(cr) over w as cr,
            sum(cs) over w as cs
        from agg
        window w as (partition by col order by v rows between unbounded preceding and current row)
    )
    select cdf.col, 1 - max(abs(cdf.cr / nr.n - cdf.cs / ns.n)) as score
    from cdf join nr on cdf.col = nr.col join ns on cdf.col = ns.col
    group by cdf.col
    """
    out = wh.query(sql).to_pylist()
    return {numeric[int(row["col"][1:])]: _as_float(row["score"]) for row in out}


def _tv(wh, r, s, discrete) -> dict[str, float]:
    """1 - total variation distance of category frequencies per column (nulls dropped)."""
    if not discrete:
        return {}
    exprs = [f"cast({quote(c)} as varchar)" for c in discrete]
    sql = f"""
    with rr as (select col, v from {_unpivot(r, exprs, "u")}),
    ss as (select col, v from {_unpivot(s, exprs, "u")}),
    fr as (select col, v, count(*) / sum(count(*)) over (partition by col) as p
           from rr group by col, v),
    fs as (select col, v, count(*) / sum(count(*)) over (partition by col) as p
           from ss group by col, v)
    select coalesce(fr.col, fs.col) as col,
        1 - 0.5 * sum(abs(coalesce(fr.p, 0) - coalesce(fs.p, 0))) as score
    from fr full outer join fs on fr.col = fs.col and fr.v = fs.v
    group by 1
    """
    out = wh.query(sql).to_pylist()
    return {discrete[int(row["col"][1:])]: _as_float(row["score"]) for row in out}


def _correlations(wh, r, s, pairs, kinds) -> dict[tuple, float]:
    """(1 - |r_real - r_synthetic| / 2, r_real) per numeric pair (NaN for constant columns)."""
    if not pairs:
        return {}
    exprs = ", ".join(
        f"corr({_numeric_expr(a, kinds[a])}, {_numeric_expr(b, kinds[b])}) as p{i}"
        for i, (a, b) in enumerate(pairs)
    )
    real = wh.query(f"select {exprs} from {r}").to_pylist()[0]
    synth = wh.query(f"select {exprs} from {s}").to_pylist()[0]
    out = {}
    for i, p in enumerate(pairs):
        cr, cs = _as_float(real[f"p{i}"]), _as_float(synth[f"p{i}"])
        score = float("nan") if math.isnan(cr) or math.isnan(cs) else 1 - abs(cr - cs) / 2
        out[p] = (score, cr)
    return out


def _binned(table, columns, kinds) -> str:
    """A select of every column as a text code: categories as they are (null is a category),
    numeric columns as their bin 1-11 among 10 equal-width bins of this table's range."""
    stats = ", ".join(
        f"min({_numeric_expr(c, kinds[c])}) as mn{i}, max({_numeric_expr(c, kinds[c])}) as mx{i}"
        for i, c in enumerate(columns)
        if kinds[c] in NUMERIC_KINDS
    )
    parts = []
    for i, c in enumerate(columns):
        if kinds[c] in NUMERIC_KINDS:
            x = _numeric_expr(c, kinds[c])
            parts.append(
                f"cast(case when {x} is null or isnan({x}) then 11 when mx{i} = mn{i} then 6 "
                f"when {x} >= mx{i} then 11 "
                f"else least(floor(({x} - mn{i}) / (mx{i} - mn{i}) * {BINS}) + 1, {BINS}) end "
                f"as varchar) as b{i}"
            )
        else:
            parts.append(f"coalesce(cast({quote(c)} as varchar), '{NULL_TOKEN}') as b{i}")
    source = f"{table}, (select {stats} from {table}) as st" if stats else table
    return f"select {', '.join(parts)} from {source}"


def _contingency(wh, r, s, pairs, kinds) -> dict[tuple, float]:
    """(1 - total variation distance of the joint frequencies, real Cramer's V) per pair
    (numeric columns of mixed pairs binned)."""
    if not pairs:
        return {}
    cols = sorted({c for p in pairs for c in p}, key=list(kinds).index)
    pos = {c: i for i, c in enumerate(cols)}

    def long(alias):
        return " union all ".join(
            f"select {k} as p, b{pos[a]} as a, b{pos[b]} as b from {alias}"
            for k, (a, b) in enumerate(pairs)
        )

    sql = f"""
    with rb as ({_binned(r, cols, kinds)}),
    sb as ({_binned(s, cols, kinds)}),
    rl as ({long("rb")}),
    sl as ({long("sb")}),
    fr as (select p, a, b, count(*) / (select count(*) from rb) as f from rl group by p, a, b),
    fs as (select p, a, b, count(*) / (select count(*) from sb) as f from sl group by p, a, b),
    sim as (
        select coalesce(fr.p, fs.p) as p,
            1 - 0.5 * sum(abs(coalesce(fr.f, 0) - coalesce(fs.f, 0))) as score
        from fr full outer join fs on fr.p = fs.p and fr.a = fs.a and fr.b = fs.b
        group by 1
    ),
    -- Cramer's V of the real table, chi2 = sum(o^2 / e) - n over the observed cells
    ra as (select p, a, sum(f) as fa from fr group by p, a),
    cb as (select p, b, sum(f) as fb from fr group by p, b),
    dims as (select p, count(distinct a) as r, count(distinct b) as c from fr group by p),
    chi as (
        select fr.p, sum(fr.f * fr.f / (ra.fa * cb.fb)) - 1 as phi2
        from fr join ra on fr.p = ra.p and fr.a = ra.a join cb on fr.p = cb.p and fr.b = cb.b
        group by fr.p
    )
    select sim.p, sim.score,
        case when least(dims.r, dims.c) < 2 then null
             else sqrt(greatest(chi.phi2, 0) / (least(dims.r, dims.c) - 1)) end as cramer
    from sim left join chi on sim.p = chi.p left join dims on sim.p = dims.p
    """
    out = {
        pairs[int(row["p"])]: (_as_float(row["score"]), _as_float(row["cramer"]))
        for row in wh.query(sql).to_pylist()
    }
    return {p: out.get(p, (float("nan"), float("nan"))) for p in pairs}


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
                shapes.append(1 - _ks_statistic(self.real_numeric[c], x) if len(x) else np.nan)
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
        s, p = _mean(shapes), _mean(pairs)
        return {"score": _mean([s, p]), "column_shapes": s, "column_pair_trends": p}


def _dropna(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x)]


def _ks_statistic(sorted_real: np.ndarray, x: np.ndarray) -> float:
    """Two-sample KS statistic (as scipy's ks_2samp, exact for ties)."""
    x = np.sort(x)
    grid = np.concatenate([sorted_real, x])
    cdf_r = np.searchsorted(sorted_real, grid, side="right") / len(sorted_real)
    cdf_s = np.searchsorted(x, grid, side="right") / len(x)
    return float(np.max(np.abs(cdf_r - cdf_s)))
