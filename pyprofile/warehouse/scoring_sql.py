"""Fitted models rendered as SQL expressions that compute exactly what their Python methods do.

Each function reads a fitted estimator's public attributes and returns the body of a scoring
function (a DuckDB macro): the segmenter's whole chain (preprocessing, encoder, nearest
centroid; scalar and bulk table form), the linear propensity model with its calibration,
BG/NBD's P(alive) and expected purchases, Gamma-Gamma's expected order value and the
discounted CLV. Sums are accumulated in the same order as the Python code, so the stored
scores and the SQL functions agree to the last bit (segments) or within 1e-9 (CLV).
Values enter the SQL only through :mod:`pyprofile.warehouse.sql`.

Every function takes ``dialect``: ``"duckdb"`` (the default: DuckDB macros) or ``"spark"``
(Spark SQL functions: backtick identifiers, backslash-escaped strings, ``transform`` /
``aggregate`` higher-order functions over ``array(...)``, 0-based subscripts, and the
hypergeometric series summed by the same term recurrence as Python instead of ``lgamma``, which
Spark lacks). What they return is a :class:`ScoringSQL`: the text (a ``str``) plus how to render
the same fitted parameters in another dialect, with the parameter and return types that typed
engines (Spark) declare.
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

DIALECTS = ("duckdb", "spark")
# What Spark cannot hold (a table function over a table named by its argument), and why.
SEGMENT_TABLE_SPARK_NOTE = (
    "Spark SQL table functions cannot take a table name: score in bulk with "
    "ml.segment_of(<feature columns>) per row"
)


class ScoringSQL(str):
    """SQL text in one dialect (the string itself) that renders the same fitted parameters in
    another (:meth:`render`), with the types a typed engine declares: ``param_types``
    (parameter -> ``DOUBLE``/``STRING``) and ``returns``."""

    def __new__(
        cls,
        text: str,
        render: Callable[[str], str | None],
        *,
        param_types: dict[str, str] | None = None,
        returns: str | None = None,
        note: str | None = None,
    ):
        obj = super().__new__(cls, text)
        obj._render = render
        obj.param_types = dict(param_types or {})
        obj.returns = returns
        obj.spark_note = note
        return obj

    def render(self, dialect: str) -> str | None:
        """The same function in ``dialect`` (None when that engine cannot express it)."""
        _check_dialect(dialect)
        return self._render(dialect)


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise InputError(f"unknown SQL dialect {dialect!r}; use one of {', '.join(DIALECTS)}")


def _scoring(text, dialect, render, **types) -> ScoringSQL:
    """``text`` for ``dialect``, re-renderable through ``render(dialect)``."""
    return ScoringSQL(text, lambda d: str(render(d)) if d != dialect else str(text), **types)


# --------------------------------------------------------------------------- dialect pieces
def _quote(name: str, dialect: str) -> str:
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return quote(name)


def _string(value: object, dialect: str) -> str:
    """A text literal; Spark reads backslash escapes (and '' as two literals)."""
    if dialect == "spark":
        string(value)  # the same checks (no NUL)
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return string(value)


def _double(column: str, dialect: str) -> str:
    return f"cast({_quote(column, dialect)} as double)" if dialect == "spark" else as_double(column)


def _text_type(dialect: str) -> str:
    return "STRING" if dialect == "spark" else "VARCHAR"


def _bind(values: str, var: str, dialect: str) -> str:
    """Opening of ``<body>`` evaluated once per row with ``var`` bound to the array ``values``
    (close with ``_unbind``): DuckDB ``list_transform([..], lambda v: ``, Spark ``transform``."""
    if dialect == "spark":
        return f"transform(array({values}), {var} -> "
    return f"list_transform([{values}], lambda {var}: "


def _first(dialect: str) -> str:
    """Closes ``_bind`` and takes its only element."""
    return ")[0]" if dialect == "spark" else ")[1]"


def _array(values: str, dialect: str) -> str:
    return f"array({values})" if dialect == "spark" else f"[{values}]"


def _item(var: str, i: int, dialect: str) -> str:
    """Element ``i`` (0-based) of array ``var``."""
    return f"{var}[{i}]" if dialect == "spark" else f"{var}[{i + 1}]"


def _spec_types(spec: list[dict[str, Any]], columns) -> dict[str, str]:
    """Spark parameter types: numeric inputs DOUBLE, categorical ones (and unused) STRING."""
    kinds = {item["column"]: item["kind"] for item in spec}
    return {c: "DOUBLE" if kinds.get(c) == "numeric" else "STRING" for c in columns}


# --------------------------------------------------------------------------- templates
def render_template(name: str, **values: str) -> str:
    """Fill a ``udfs/`` template; lines starting with ``--`` are documentation and dropped."""
    text = (udfs_dir() / name).read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return Template(body).substitute(values).strip()


# --------------------------------------------------------------------------- preprocessing
def preprocessing_sql(spec: list[dict[str, Any]], dialect: str = "duckdb") -> list[str]:
    """One expression per preprocessed column (impute, ln(1 + x), robust scale, clip,
    indicators, one-hot), the same arithmetic as
    :func:`pyprofile.models.preprocessing.apply_preprocessing`."""
    _check_dialect(dialect)
    exprs: list[str] = []
    for item in spec:
        col = _quote(item["column"], dialect)
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
                f"CASE WHEN CAST({col} AS {_text_type(dialect)}) = {_string(level, dialect)} "
                "THEN 1.0e0 ELSE 0.0e0 END"
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


def _stage_sql(
    model: Segmenter, ref: Callable[[int, int], str], dialect: str = "duckdb"
) -> list[list[str]]:
    """Expressions of every scoring stage; ``ref(stage, i)`` names input i of a stage."""
    layers, centers = model.encoder_layers_, model.cluster_centers_
    stages = [preprocessing_sql(model.preprocessing_, dialect)]
    for i, (weight, bias) in enumerate(layers):
        inputs = [ref(i, j) for j in range(weight.shape[1])]
        stages.append(_dense_sql(inputs, weight, bias, relu=i < len(layers) - 1))
    inputs = [ref(len(layers), j) for j in range(centers.shape[1])]
    stages.append(_distance_sql(inputs, centers))
    return stages


def segment_of_sql(model: Segmenter, dialect: str = "duckdb") -> ScoringSQL:
    """Body of ``segment_of(<feature_names_in_>)``: the full scoring chain in SQL.

    Each stage is computed once per row by binding it to a lambda variable
    (``list_transform([[...]], lambda s: ...)[1]``; Spark: ``transform(array(array(...)),
    s -> ...)[0]``), so the expression stays linear in the model size. Needs DuckDB >= 1.3
    (``lambda`` syntax) or Spark >= 4.0 (SQL functions).
    """
    model._check_fitted()
    _check_dialect(dialect)
    stages = _stage_sql(model, lambda stage, i: _item(f"s{stage}", i, dialect), dialect)
    names = [f"s{i}" for i in range(len(stages) - 1)] + ["d"]
    opening = "".join(
        f"({_bind(_array(', '.join(exprs), dialect), var, dialect)}"
        for exprs, var in zip(stages, names, strict=True)
    )
    ids = ", ".join(str(int(i)) for i in model.segment_ids_)
    close = f"{_first(dialect)})" * len(stages)
    if dialect == "spark":  # the first minimum, as numpy.argmin; array_position is 1-based
        text = f"{opening}CAST(element_at(array({ids}), CAST(array_position(d, array_min(d)) AS INT)) AS BIGINT){close}"
    else:
        text = render_template("segment_of.sql.tmpl", stages=opening, segment_ids=ids, close=close)
    types = _spec_types(model.preprocessing_, model.feature_names_in_)
    return _scoring(
        text, dialect, lambda d: segment_of_sql(model, d), param_types=types, returns="BIGINT"
    )


def segment_table_sql(model: Segmenter, dialect: str = "duckdb") -> ScoringSQL | None:
    """Body of the table macro ``segment_table(tbl)``: bulk scoring in SQL.

    Returns every column of the named table plus ``segment_id`` and ``distance_to_centroid``;
    one CTE per stage with plain columns, so DuckDB vectorises it much better than the scalar
    macro. Same arithmetic, same results as ``Segmenter.predict``. DuckDB only: Spark SQL table
    functions cannot take a table name (None for ``"spark"``; see
    :data:`SEGMENT_TABLE_SPARK_NOTE`).
    """
    model._check_fitted()
    _check_dialect(dialect)
    if dialect != "duckdb":
        return None

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
    text = render_template(
        "segment_table.sql.tmpl",
        ctes=", ".join(ctes),
        internal=", ".join(internal),
        segment_ids=", ".join(str(int(i)) for i in model.segment_ids_),
        distances=dists,
        last=source,
    )
    return ScoringSQL(
        text,
        lambda d: str(text) if d == "duckdb" else None,
        note=SEGMENT_TABLE_SPARK_NOTE,
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


def _linear_sql(model: PropensityModel, dialect: str) -> str:
    """The linear model's log-odds: intercept + sum of coefficient x preprocessed column."""
    terms = [number(model.linear_["intercept"])]
    design = preprocessing_sql(model.spec_, dialect)
    for expr, coef in zip(design, model.linear_["coef"], strict=True):
        terms.append(f"{number(coef)} * ({expr})")
    return " + ".join(terms)


def _tree_sql(trees: dict[str, np.ndarray], start: int, node: int, dialect: str) -> str:
    """One tree as nested CASE expressions over the bound design vector ``d``."""
    i = start + node
    if trees["gbm_is_leaf"][i]:
        return number(trees["gbm_value"][i])
    column = _item("d", int(trees["gbm_feature_idx"][i]), dialect)
    left = _tree_sql(trees, start, int(trees["gbm_left"][i]), dialect)
    right = _tree_sql(trees, start, int(trees["gbm_right"][i]), dialect)
    threshold = number(trees["gbm_num_threshold"][i])
    return f"(case when {column} <= {threshold} then {left} else {right} end)"


def _gbm_sql(model: PropensityModel, dialect: str) -> str:
    """The boosted trees' log-odds: baseline + tree 1 + tree 2 + ... (the order numpy sums
    them in), over the design vector computed once per row."""
    trees = model.gbm_arrays_
    starts = np.r_[0, np.cumsum(trees["gbm_tree_sizes"])[:-1]]
    total = " + ".join(
        [number(trees["gbm_baseline"][0]), *(_tree_sql(trees, int(s), 0, dialect) for s in starts)]
    )
    design = ", ".join(preprocessing_sql(model.spec_, dialect))
    return f"{_bind(_array(design, dialect), 'd', dialect)}{total}{_first(dialect)}"


def propensity_sql(
    model: PropensityModel, which: str | None = None, dialect: str = "duckdb"
) -> tuple[list[str], ScoringSQL]:
    """``(parameters, body)`` equal to ``predict_proba(X, model=which)[:, 1]``: the kept model
    (``best_model_``) by default, linear or boosted trees, with its calibration.

    The parameters are the model's feature columns. Trees become nested CASE expressions and
    the design vector is bound once per row (``lambda``: DuckDB >= 1.3).
    """
    model._check_fitted()
    _check_dialect(dialect)
    name = model.best_model_ if which is None else which
    if name not in model.calibrators_:
        raise InputError(f"model {name!r} was not fitted; fitted: {', '.join(model.calibrators_)}")
    z = _linear_sql(model, dialect) if name == "linear" else _gbm_sql(model, dialect)
    cal = model.calibrators_[name]
    if cal["method"] != "isotonic":  # z appears once: plain SQL
        text = f"({_calibrator_sql(cal, f'({z})')})"
    else:  # isotonic refers to z in every branch: bind it once
        text = f"({_bind(z, 'z', dialect)}{_calibrator_sql(cal, 'z')}{_first(dialect)})"
    params = list(model.feature_names_in_)
    body = _scoring(
        text,
        dialect,
        lambda d: propensity_sql(model, name, d)[1],
        param_types=_spec_types(model.spec_, params),
        returns="DOUBLE",
    )
    return params, body


# --------------------------------------------------------------------------- BG/NBD
def _log_div_sql(model: BGNBD, x: str, tx: str, T: str) -> str:
    r, alpha, a, b = (number(model.params_[k]) for k in model.param_names)
    return f"(({r} + {x}) * ln(({alpha} + {T}) / ({alpha} + {tx})) + ln({a} / ({b} + {x} - 1.0)))"


def p_alive_sql(
    model: BGNBD,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    dialect: str = "duckdb",
) -> ScoringSQL:
    """SQL expression equal to :meth:`BGNBD.p_alive` over the three named columns."""
    model._check_fitted()
    _check_dialect(dialect)
    x, tx, TT = (_double(c, dialect) for c in (frequency, recency, T))
    text = (
        f"(case when {x} is null or {tx} is null or {TT} is null then null "
        f"when {x} = 0 then 1.0 "
        f"else 1.0 / (1.0 + exp(least({_log_div_sql(model, x, tx, TT)}, {number(EXP_CAP)}))) end)"
    )
    return _scoring(
        text,
        dialect,
        lambda d: p_alive_sql(model, frequency, recency, T, d),
        param_types=dict.fromkeys((frequency, recency, T), "DOUBLE"),
        returns="DOUBLE",
    )


def _hypergeometric_sql(model: BGNBD, x: str, z: str, dialect: str = "duckdb") -> str:
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
    if dialect == "spark":
        return _recurrence_sql(A, B, C, z, n_terms)
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


def _recurrence_sql(A: float, B: float, C: str, z: str, n_terms: str) -> str:
    """The series by the term recurrence Python uses (``t_k+1 = t_k (A+k)(B+k) / ((C+k)(k+1))
    z``, summed in the same order) with Spark's ``aggregate``: Spark has no ``lgamma``."""
    ratio = f"(({number(A)} + k) * ({number(B)} + k) / (({C} + k) * (k + 1.0e0)) * {z})"
    return (
        f"aggregate(sequence(0, {n_terms} - 2), named_struct('t', 1.0e0, 's', 0.0e0), "
        f"(acc, k) -> named_struct('t', acc.t * {ratio}, 's', acc.s + acc.t), "
        "acc -> acc.s + acc.t)"
    )


def expected_purchases_sql(
    model: BGNBD,
    t: str = "horizon",
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    dialect: str = "duckdb",
) -> ScoringSQL:
    """SQL expression equal to :meth:`BGNBD.expected_purchases` (needs DuckDB >= 1.3 lambdas).

    The horizon argument is named ``horizon`` by default because DuckDB macro parameter names
    are case-insensitive (``t`` would clash with ``T``).
    """
    model._check_fitted()
    _check_dialect(dialect)
    r, alpha, a, b = (model.params_[k] for k in model.param_names)
    x, tx, TT, tt = (_double(c, dialect) for c in (frequency, recency, T, t))
    z = f"({tt} / ({number(alpha)} + {TT} + {tt}))"
    hyp = _hypergeometric_sql(model, x, z, dialect)
    ratio = f"(({number(alpha)} + {TT}) / ({number(alpha)} + {TT} + {tt}))"
    second = f"(1.0 - exp({number(a - 1.0)} * ln({ratio})) * {hyp})"
    first = f"(({number(a + b - 1.0)} + {x}) / {number(a - 1.0)})"
    text = (
        f"(case when {x} is null or {tx} is null or {TT} is null or {tt} is null then null "
        f"when {tt} <= 0 then 0.0 "
        f"else {first} * {second} * {p_alive_sql(model, frequency, recency, T, dialect)} end)"
    )
    return _scoring(
        text,
        dialect,
        lambda d: expected_purchases_sql(model, t, frequency, recency, T, d),
        param_types=dict.fromkeys((t, frequency, recency, T), "DOUBLE"),
        returns="DOUBLE",
    )


# --------------------------------------------------------------------------- Gamma-Gamma, CLV
def expected_value_sql(
    model: GammaGamma,
    frequency: str = "frequency",
    monetary_value: str = "monetary_value",
    dialect: str = "duckdb",
) -> ScoringSQL:
    """SQL expression equal to :meth:`GammaGamma.expected_value`."""
    model._check_fitted()
    _check_dialect(dialect)
    p, q, v = (model.params_[k] for k in model.param_names)
    x, m = _double(frequency, dialect), _double(monetary_value, dialect)
    w = f"({number(p)} * {x} / ({number(p)} * {x} + {number(q - 1.0)}))"
    mm = f"(case when {x} > 0 then {m} else 0.0 end)"
    text = (
        f"(case when {x} is null then null "
        f"else (1.0 - {w}) * {number(v * p / (q - 1.0))} + {w} * {mm} end)"
    )
    return _scoring(
        text,
        dialect,
        lambda d: expected_value_sql(model, frequency, monetary_value, d),
        param_types=dict.fromkeys((frequency, monetary_value), "DOUBLE"),
        returns="DOUBLE",
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
    dialect: str = "duckdb",
) -> ScoringSQL:
    """SQL expression equal to :func:`pyprofile.models.clv.clv`, calling the published
    expected-purchases and expected-value functions by name."""
    _check_dialect(dialect)
    settings = dict(frequency=frequency, recency=recency, T=T, monetary_value=monetary_value)
    settings.update(months=months, discount_rate=discount_rate)
    args = ", ".join(_quote(c, dialect) for c in (frequency, recency, T))
    ev = (
        f"{expected_value_function}({_quote(frequency, dialect)}, "
        f"{_quote(monetary_value, dialect)})"
    )
    cums = ["0.0"] + [
        f"{expected_purchases_function}({number(m * periods_per_month)}, {args})"
        for m in range(1, months + 1)
    ]
    parts = [
        f"({cums[m]} - {cums[m - 1]}) / {number((1.0 + discount_rate) ** m)}"
        for m in range(1, months + 1)
    ]
    text = f"({ev} * ({' + '.join(parts)}))"
    return _scoring(
        text,
        dialect,
        lambda d: clv_sql(
            expected_purchases_function,
            expected_value_function,
            **settings,
            periods_per_month=periods_per_month,
            dialect=d,
        ),
        param_types=dict.fromkeys((frequency, recency, T, monetary_value), "DOUBLE"),
        returns="DOUBLE",
    )
