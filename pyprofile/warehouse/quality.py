"""How faithful synthetic rows are, computed as SQL in the warehouse.

Fidelity follows SDMetrics' Quality Report and runs in the engine: Column Shapes
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

from pyprofile.errors import InputError
from pyprofile.models.synth.quality import (
    BINS,
    DISCRETE_KINDS,
    NULL_TOKEN,
    NUMERIC_KINDS,
    mean_score,
)
from pyprofile.warehouse.sql import qualified, quote

PAIR_BATCH = 200  # column pairs per contingency query


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
    shape_score = mean_score(d["score"] for d in details if d["metric_group"] == "column_shapes")
    pair_score = mean_score(
        d["score"] for d in details if d["metric_group"] == "column_pair_trends" and d["counted"]
    )
    overall = mean_score([shape_score, pair_score])
    return QualityReport(overall, shape_score, pair_score, details)


def _unpivot(table, exprs: list[str], alias, dialect: str = "duckdb") -> str:
    """Long form (col = c<i>, v), nulls dropped: DuckDB's UNPIVOT, elsewhere (Spark, whose
    UNPIVOT syntax differs) the same rows as a union of one select per column."""
    if dialect != "duckdb":
        parts = " union all ".join(
            f"select 'c{i}' as col, {e} as v from {table} where {e} is not null"
            for i, e in enumerate(exprs)
        )
        return f"({parts}) as {alias}"
    cols = ", ".join(f"{e} as c{i}" for i, e in enumerate(exprs))
    names = ", ".join(f"c{i}" for i in range(len(exprs)))
    return f"(unpivot (select {cols} from {table}) on {names} into name col value v) as {alias}"


def _ks(wh, r, s, numeric, kinds) -> dict[str, float]:
    """1 - two-sample KS statistic per numeric column (nulls dropped), all columns in one query."""
    if not numeric:
        return {}
    exprs = [_numeric_expr(c, kinds[c]) for c in numeric]
    dialect = getattr(wh, "dialect", "duckdb")
    sql = f"""
    with rr as (select col, v from {_unpivot(r, exprs, "u", dialect)}),
    ss as (select col, v from {_unpivot(s, exprs, "u", dialect)}),
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
    dialect = getattr(wh, "dialect", "duckdb")
    sql = f"""
    with rr as (select col, v from {_unpivot(r, exprs, "u", dialect)}),
    ss as (select col, v from {_unpivot(s, exprs, "u", dialect)}),
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


def _corr(a: str, b: str, guard: bool) -> str:
    """Pearson r; null for a constant column (``guard``: for Spark, whose ANSI mode fails the
    query with a division by zero where DuckDB gives null)."""
    if not guard:
        return f"corr({a}, {b})"
    return f"covar_pop({a}, {b}) / nullif(stddev_pop({a}) * stddev_pop({b}), 0)"


def _correlations(wh, r, s, pairs, kinds) -> dict[tuple, float]:
    """(1 - |r_real - r_synthetic| / 2, r_real) per numeric pair (NaN for constant columns)."""
    if not pairs:
        return {}
    guard = getattr(wh, "dialect", "duckdb") != "duckdb"
    exprs = ", ".join(
        f"{_corr(_numeric_expr(a, kinds[a]), _numeric_expr(b, kinds[b]), guard)} as p{i}"
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
    (numeric columns of mixed pairs binned), ``PAIR_BATCH`` pairs per query so that memory
    stays bounded on wide tables (thousands of pairs)."""
    out = {}
    for lo in range(0, len(pairs), PAIR_BATCH):
        out.update(_contingency_batch(wh, r, s, pairs[lo : lo + PAIR_BATCH], kinds))
    return out


def _contingency_batch(wh, r, s, pairs, kinds) -> dict[tuple, float]:
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
