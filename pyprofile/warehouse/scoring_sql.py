"""Fitted models rendered as SQL expressions that compute exactly what their Python methods do.

Each function reads a fitted estimator's public attributes and returns the body of a scoring
function (a DuckDB macro): the segmenter's whole chain (preprocessing, encoder, nearest
centroid; scalar and bulk table form), the linear propensity model with its calibration,
BG/NBD's P(alive) and expected purchases, Gamma-Gamma's expected order value and the
discounted CLV. Sums are accumulated in the same order as the Python code, so the stored
scores and the SQL functions agree to the last bit (segments) or within 1e-9 (CLV).
Values enter the SQL only through :mod:`pyprofile.warehouse.sql`.
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template
from typing import Any

import numpy as np
from scipy.special import gammaln

from pyprofile.errors import InputError
from pyprofile.models.clv import BGNBD, EXP_CAP, SERIES_LOG_EPS, SERIES_MAX_TERMS, GammaGamma
from pyprofile.models.propensity import PropensityModel
from pyprofile.models.segment import Segmenter
from pyprofile.resources import udfs_dir
from pyprofile.warehouse.sql import as_double, number, quote, string


# --------------------------------------------------------------------------- templates
def render_template(name: str, **values: str) -> str:
    """Fill a ``udfs/`` template; lines starting with ``--`` are documentation and dropped."""
    text = (udfs_dir() / name).read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return Template(body).substitute(values).strip()


# --------------------------------------------------------------------------- preprocessing
def preprocessing_sql(spec: list[dict[str, Any]]) -> list[str]:
    """One expression per preprocessed column (impute, ln(1 + x), robust scale, clip,
    indicators, one-hot), the same arithmetic as
    :func:`pyprofile.models.preprocessing.apply_preprocessing`."""
    exprs: list[str] = []
    for item in spec:
        col = quote(item["column"])
        if item["kind"] == "numeric":
            x = f"coalesce(CAST({col} AS DOUBLE), {number(item['fill'])})"
            if item["log"]:
                x = f"ln(1.0e0 + greatest({x}, 0.0e0))"
            z = f"(({x} - {number(item['center'])}) / {number(item['scale'])})"
            c = item["clip"]
            exprs.append(f"least(greatest({z}, {number(-c)}), {number(c)})")
            if item["indicator"]:
                exprs.append(f"CASE WHEN {col} IS NULL THEN 1.0e0 ELSE 0.0e0 END")
            continue
        for level in item["levels"]:
            exprs.append(
                f"CASE WHEN CAST({col} AS VARCHAR) = {string(level)} THEN 1.0e0 ELSE 0.0e0 END"
            )
        if item["null_level"]:
            exprs.append(f"CASE WHEN {col} IS NULL THEN 1.0e0 ELSE 0.0e0 END")
    return exprs


# --------------------------------------------------------------------------- segmenter
def _dense_sql(inputs: list[str], weight: np.ndarray, bias: np.ndarray, *, relu: bool) -> list[str]:
    """One expression per output unit: ``bias + w_1 * x_1 + ...`` (left to right, as Python)."""
    exprs = []
    for j in range(weight.shape[0]):
        terms = " + ".join(f"{number(weight[j, i])} * {x}" for i, x in enumerate(inputs))
        expr = f"{number(bias[j])} + {terms}"
        exprs.append(f"greatest({expr}, 0.0e0)" if relu else f"({expr})")
    return exprs


def _distance_sql(inputs: list[str], centers: np.ndarray) -> list[str]:
    """Squared distance to each center, summed left to right (as Python)."""
    exprs = []
    for center in centers:
        terms = []
        for x, c in zip(inputs, center, strict=True):
            diff = f"({x} - {number(c)})"
            terms.append(f"{diff} * {diff}")
        exprs.append(" + ".join(terms))
    return exprs


def _stage_sql(model: Segmenter, ref: Callable[[int, int], str]) -> list[list[str]]:
    """Expressions of every scoring stage; ``ref(stage, i)`` names input i of a stage."""
    layers, centers = model.encoder_layers_, model.cluster_centers_
    stages = [preprocessing_sql(model.preprocessing_)]
    for i, (weight, bias) in enumerate(layers):
        inputs = [ref(i, j) for j in range(weight.shape[1])]
        stages.append(_dense_sql(inputs, weight, bias, relu=i < len(layers) - 1))
    inputs = [ref(len(layers), j) for j in range(centers.shape[1])]
    stages.append(_distance_sql(inputs, centers))
    return stages


def segment_of_sql(model: Segmenter) -> str:
    """Body of ``segment_of(<feature_names_in_>)``: the full scoring chain in SQL.

    Each stage is computed once per row by binding it to a lambda variable
    (``list_transform([[...]], lambda s: ...)[1]``), so the expression stays linear in the
    model size. Needs DuckDB >= 1.3 (``lambda`` syntax).
    """
    model._check_fitted()
    stages = _stage_sql(model, lambda stage, i: f"s{stage}[{i + 1}]")
    names = [f"s{i}" for i in range(len(stages) - 1)] + ["d"]
    opening = "".join(
        f"(list_transform([[{', '.join(exprs)}]], lambda {var}: "
        for exprs, var in zip(stages, names, strict=True)
    )
    return render_template(
        "segment_of.sql.tmpl",
        stages=opening,
        segment_ids=", ".join(str(int(i)) for i in model.segment_ids_),
        close=")[1])" * len(stages),
    )


def segment_table_sql(model: Segmenter) -> str:
    """Body of the table macro ``segment_table(tbl)``: bulk scoring in SQL.

    Returns every column of the named table plus ``segment_id`` and ``distance_to_centroid``;
    one CTE per stage with plain columns, so DuckDB vectorises it much better than the scalar
    macro. Same arithmetic, same results as ``Segmenter.predict``.
    """
    model._check_fitted()

    def col(stage: int, i: int) -> str:
        return quote(f"__seg_{stage}_{i}")

    stages = _stage_sql(model, col)
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
        segment_ids=", ".join(str(int(i)) for i in model.segment_ids_),
        distances=dists,
        last=source,
    )


# --------------------------------------------------------------------------- propensity
def _calibrator_sql(cal: dict[str, Any], z: str) -> str:
    if cal["method"] in ("sigmoid", "none"):
        return f"1.0e0 / (1.0e0 + exp(-({number(cal['a'])} * {z} + {number(cal['b'])})))"
    xs, ys = cal["x"], cal["y"]
    if len(xs) == 1:
        return number(ys[0])
    parts = [f"case when {z} <= {number(xs[0])} then {number(ys[0])}"]
    for j in range(len(xs) - 1):
        slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
        parts.append(
            f"when {z} <= {number(xs[j + 1])} then "
            f"{number(ys[j])} + ({z} - {number(xs[j])}) * {number(slope)}"
        )
    parts.append(f"else {number(ys[-1])} end")
    return " ".join(parts)


def _linear_sql(model: PropensityModel) -> str:
    """The linear model's log-odds: intercept + sum of coefficient x preprocessed column."""
    terms = [number(model.linear_["intercept"])]
    for expr, coef in zip(preprocessing_sql(model.spec_), model.linear_["coef"], strict=True):
        terms.append(f"{number(coef)} * ({expr})")
    return " + ".join(terms)


def _tree_sql(trees: dict[str, np.ndarray], start: int, node: int) -> str:
    """One tree as nested CASE expressions over the bound design vector ``d``."""
    i = start + node
    if trees["gbm_is_leaf"][i]:
        return number(trees["gbm_value"][i])
    column = int(trees["gbm_feature_idx"][i]) + 1
    left = _tree_sql(trees, start, int(trees["gbm_left"][i]))
    right = _tree_sql(trees, start, int(trees["gbm_right"][i]))
    threshold = number(trees["gbm_num_threshold"][i])
    return f"(case when d[{column}] <= {threshold} then {left} else {right} end)"


def _gbm_sql(model: PropensityModel) -> str:
    """The boosted trees' log-odds: baseline + tree 1 + tree 2 + ... (the order numpy sums
    them in), over the design vector computed once per row."""
    trees = model.gbm_arrays_
    starts = np.r_[0, np.cumsum(trees["gbm_tree_sizes"])[:-1]]
    total = " + ".join(
        [number(trees["gbm_baseline"][0]), *(_tree_sql(trees, int(s), 0) for s in starts)]
    )
    design = ", ".join(preprocessing_sql(model.spec_))
    return f"list_transform([[{design}]], lambda d: {total})[1]"


def propensity_sql(model: PropensityModel, which: str | None = None) -> tuple[list[str], str]:
    """``(parameters, body)`` equal to ``predict_proba(X, model=which)[:, 1]``: the kept model
    (``best_model_``) by default, linear or boosted trees, with its calibration.

    The parameters are the model's feature columns. Trees become nested CASE expressions and
    the design vector is bound once per row (``lambda``: DuckDB >= 1.3).
    """
    model._check_fitted()
    name = model.best_model_ if which is None else which
    if name not in model.calibrators_:
        raise InputError(f"model {name!r} was not fitted; fitted: {', '.join(model.calibrators_)}")
    z = _linear_sql(model) if name == "linear" else _gbm_sql(model)
    cal = model.calibrators_[name]
    if cal["method"] != "isotonic":  # z appears once: plain SQL
        return list(model.feature_names_in_), f"({_calibrator_sql(cal, f'({z})')})"
    # isotonic refers to z in every branch: bind it once
    body = _calibrator_sql(cal, "z")
    return list(model.feature_names_in_), f"(list_transform([{z}], lambda z: {body})[1])"


# --------------------------------------------------------------------------- BG/NBD
def _log_div_sql(model: BGNBD, x: str, tx: str, T: str) -> str:
    r, alpha, a, b = (number(model.params_[k]) for k in model.param_names)
    return f"(({r} + {x}) * ln(({alpha} + {T}) / ({alpha} + {tx})) + ln({a} / ({b} + {x} - 1.0)))"


def p_alive_sql(
    model: BGNBD, frequency: str = "frequency", recency: str = "recency", T: str = "T"
) -> str:
    """SQL expression equal to :meth:`BGNBD.p_alive` over the three named columns."""
    model._check_fitted()
    x, tx, TT = as_double(frequency), as_double(recency), as_double(T)
    return (
        f"(case when {x} is null or {tx} is null or {TT} is null then null "
        f"when {x} = 0 then 1.0 "
        f"else 1.0 / (1.0 + exp(least({_log_div_sql(model, x, tx, TT)}, {number(EXP_CAP)}))) end)"
    )


def _hypergeometric_sql(model: BGNBD, x: str, z: str) -> str:
    """The series 2F1(A, B; C; z) of :meth:`BGNBD.expected_purchases`, summed in SQL."""
    r, alpha, a, b = (model.params_[k] for k in model.param_names)
    A, B, growth = model.series_constants()
    if A == 0.0 or B == 0.0:
        return "1.0"
    C = f"({number(a + b - 1.0)} + {x})"
    n_terms = (
        f"least({SERIES_MAX_TERMS}, cast(ceil(-{number(SERIES_LOG_EPS)} / ln({z})) as bigint)"
        f" * {1 + growth} + 20)"
    )
    # k-th term from log-gamma ratios; signs from the negative Pochhammer factors
    n_neg = [int(np.ceil(-v)) if v < 0 else 0 for v in (A, B)]
    sign_parts = [f"least(k, {n})" for n in n_neg if n] + [
        f"(case when {C} < 0 then least(k, cast(ceil(-{C}) as bigint)) else 0 end)"
    ]
    sign = f"(case when ({' + '.join(sign_parts)}) % 2 = 0 then 1.0 else -1.0 end)"
    log_term = (
        f"lgamma({number(A)} + k) - {number(float(gammaln(A)))} "
        f"+ lgamma({number(B)} + k) - {number(float(gammaln(B)))} "
        f"+ lgamma({C}) - lgamma({C} + k) - lgamma(k + 1.0) + k * ln({z})"
    )
    return f"list_sum(list_transform(range(0, {n_terms}), lambda k: {sign} * exp({log_term})))"


def expected_purchases_sql(
    model: BGNBD,
    t: str = "horizon",
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
) -> str:
    """SQL expression equal to :meth:`BGNBD.expected_purchases` (needs DuckDB >= 1.3 lambdas).

    The horizon argument is named ``horizon`` by default because DuckDB macro parameter names
    are case-insensitive (``t`` would clash with ``T``).
    """
    model._check_fitted()
    r, alpha, a, b = (model.params_[k] for k in model.param_names)
    x, tx, TT, tt = as_double(frequency), as_double(recency), as_double(T), as_double(t)
    z = f"({tt} / ({number(alpha)} + {TT} + {tt}))"
    hyp = _hypergeometric_sql(model, x, z)
    ratio = f"(({number(alpha)} + {TT}) / ({number(alpha)} + {TT} + {tt}))"
    second = f"(1.0 - exp({number(a - 1.0)} * ln({ratio})) * {hyp})"
    first = f"(({number(a + b - 1.0)} + {x}) / {number(a - 1.0)})"
    return (
        f"(case when {x} is null or {tx} is null or {TT} is null or {tt} is null then null "
        f"when {tt} <= 0 then 0.0 "
        f"else {first} * {second} * {p_alive_sql(model, frequency, recency, T)} end)"
    )


# --------------------------------------------------------------------------- Gamma-Gamma, CLV
def expected_value_sql(
    model: GammaGamma, frequency: str = "frequency", monetary_value: str = "monetary_value"
) -> str:
    """SQL expression equal to :meth:`GammaGamma.expected_value`."""
    model._check_fitted()
    p, q, v = (model.params_[k] for k in model.param_names)
    x, m = as_double(frequency), as_double(monetary_value)
    w = f"({number(p)} * {x} / ({number(p)} * {x} + {number(q - 1.0)}))"
    mm = f"(case when {x} > 0 then {m} else 0.0 end)"
    return (
        f"(case when {x} is null then null "
        f"else (1.0 - {w}) * {number(v * p / (q - 1.0))} + {w} * {mm} end)"
    )


def clv_sql(
    expected_purchases_function: str,
    expected_value_function: str,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    monetary_value: str = "monetary_value",
    months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float = 30.0,
) -> str:
    """SQL expression equal to :func:`pyprofile.models.clv.clv`, calling the published
    expected-purchases and expected-value functions by name."""
    args = ", ".join(quote(c) for c in (frequency, recency, T))
    ev = f"{expected_value_function}({quote(frequency)}, {quote(monetary_value)})"
    cums = ["0.0"] + [
        f"{expected_purchases_function}({number(m * periods_per_month)}, {args})"
        for m in range(1, months + 1)
    ]
    parts = [
        f"({cums[m]} - {cums[m - 1]}) / {number((1.0 + discount_rate) ** m)}"
        for m in range(1, months + 1)
    ]
    return f"({ev} * ({' + '.join(parts)}))"
