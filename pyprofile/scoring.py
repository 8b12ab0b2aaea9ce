"""The warehouse flow for propensity and lifetime value: train, score, write, register, publish.

:func:`run_scoring` reads the point-in-time training table (features at ``as_of - horizon``
plus the labels observed in ``(cutoff, as_of]``) and the scoring table (the same features at
``as_of``), trains the churn and purchase models, fits BG/NBD + Gamma-Gamma on the
lifetimes-style columns at ``as_of``, writes one row per customer to ``ml.customer_scores``
in one atomic replace, stores every model with its metrics in ``ml.model_registry`` and
publishes the scoring macros (``ml.churn_score``, ``ml.purchase_score``, ``ml.p_alive``,
``ml.expected_purchases``, ``ml.expected_value``, ``ml.clv_12m``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pyprofile import registry
from pyprofile.clv import BGNBD, GammaGamma, clv, clv_sql
from pyprofile.errors import InputError
from pyprofile.propensity import PropensityModel, roc_auc
from pyprofile.warehouse import Warehouse, split_name

__all__ = ["METRIC_COLUMNS", "SCORE_COLUMNS", "metrics_rows", "run_scoring"]

LIFETIMES_COLUMNS = ("frequency", "recency", "T", "monetary_value")
SCORE_COLUMNS = (
    "churn_probability",
    "purchase_probability",
    "churn_reason_1",
    "churn_reason_2",
    "churn_reason_3",
    "p_alive",
    "expected_purchases_90d",
    "expected_avg_order_value",
    "clv_12m",
    "model_version",
)
# what `pyprofile score` prints: one row per model
METRIC_COLUMNS = (
    "model",
    "estimator",
    "calibration",
    "roc_auc",
    "pr_auc",
    "brier",
    "brier_uncalibrated",
    "top_decile_lift",
    "n_test",
    "version",
)


def _frame(wh: Warehouse, name: str, required: Sequence[str]) -> pd.DataFrame:
    wh.require(name, required)
    frame = wh.read(name).to_pandas()
    if frame.empty:
        raise InputError(f"table {name} is empty (0 rows)")
    return frame


def _labels(frame: pd.DataFrame, name: str, table: str) -> pd.Series:
    y = frame[name]
    n_null = int(y.isna().sum())
    if n_null:
        raise InputError(
            f"table {table}: label column {name} has {n_null} null(s) in {len(y)} rows"
        )
    return y.astype("float64")


def _fit_propensity(
    frame: pd.DataFrame, features: list[str], label: str, table: str, model: str, random_state: int
) -> PropensityModel:
    try:
        return PropensityModel(model=model, columns=features, random_state=random_state).fit(
            frame[features], _labels(frame, label, table)
        )
    except InputError as exc:
        raise InputError(f"table {table} ({len(frame)} rows), label {label}: {exc}") from exc


def _summary_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        c: pd.to_numeric(frame[c], errors="coerce").astype("float64").to_numpy()
        for c in LIFETIMES_COLUMNS
    }


def _fit_clv(frame: pd.DataFrame, table: str) -> tuple[BGNBD, GammaGamma, np.ndarray]:
    """Fit both models on customers with a complete lifetimes summary; returns the row mask."""
    cols = _summary_columns(frame)
    known = ~(np.isnan(cols["frequency"]) | np.isnan(cols["recency"]) | np.isnan(cols["T"]))
    try:
        bg = BGNBD().fit(cols["frequency"][known], cols["recency"][known], cols["T"][known])
        gg = GammaGamma().fit(cols["frequency"][known], cols["monetary_value"][known])
    except InputError as exc:
        raise InputError(
            f"table {table} ({int(known.sum())} customers with purchases): {exc}"
        ) from exc
    return bg, gg, known


def _clv_holdout(
    training: pd.DataFrame, table: str, horizon_days: int, purchase_label: str, spend_label: str
) -> dict[str, float]:
    """Fit BG/NBD + Gamma-Gamma at the cutoff and score them on the labelled window."""
    if any(c not in training.columns for c in LIFETIMES_COLUMNS):
        return {}
    bg, gg, known = _fit_clv(training, table)
    cols = {k: v[known] for k, v in _summary_columns(training).items()}
    expected = bg.expected_purchases(
        float(horizon_days), cols["frequency"], cols["recency"], cols["T"]
    )
    out: dict[str, float] = {"n_test": int(known.sum())}
    if purchase_label in training.columns:
        out["roc_auc"] = roc_auc(training[purchase_label].to_numpy()[known] > 0, expected)
    if spend_label in training.columns:
        value = gg.expected_value(cols["frequency"], np.nan_to_num(cols["monetary_value"]))
        actual = pd.to_numeric(training[spend_label]).fillna(0.0).to_numpy()[known]
        out["spend_mae"] = float(np.mean(np.abs(expected * value - actual)))
        out["spend_mae_baseline"] = float(np.mean(np.abs(actual - actual.mean())))
    return out


def _gg_metrics(gg: GammaGamma, frame: pd.DataFrame, known: np.ndarray) -> dict[str, float]:
    """Fit diagnostics: the model's mean order value against the observed one.

    With ``q`` close to 1 the Gamma-Gamma population mean ``v p / (q - 1)`` runs far above
    the data's (heavy-tailed or mixed spend); this makes it visible in the registry.
    """
    cols = _summary_columns(frame)
    repeat = known & (cols["frequency"] > 0) & (cols["monetary_value"] > 0)
    p, q, v = (gg.params_[k] for k in ("p", "q", "v"))
    return {
        "n_customers": gg.n_customers_,
        "n_excluded": gg.n_excluded_,
        "population_mean": v * p / (q - 1.0) if q > 1 else None,  # None: infinite
        "observed_mean": float(np.mean(cols["monetary_value"][repeat])),
    }


def _save(wh: Warehouse, name: str, model: Any, params: dict, metrics: dict) -> str:
    arrays, meta = model.to_arrays()
    return registry.save_model(
        wh, name, registry.pack(arrays, meta), params=params, metrics=metrics
    )


def run_scoring(
    wh: Warehouse | str,
    *,
    horizon_days: int = 90,
    training_table: str = "features.customer_training",
    scoring_table: str = "features.customer_features",
    output_table: str | None = "ml.customer_scores",
    id_column: str = "customer_id",
    churn_label: str = "churned",
    purchase_label: str = "purchased",
    spend_label: str = "spend_in_window",
    exclude: Sequence[str] = (),
    propensity_model: str = "auto",
    macro_schema: str = "ml",
    discount_rate: float = 0.01,
    random_state: int = 0,
) -> dict[str, Any]:
    """Train, score every customer at ``as_of`` and publish; returns a summary dict.

    The summary has ``rows`` (customers scored), ``output_table``, ``model_version``,
    ``versions`` (registry version per model), ``metrics`` (one dict per model with
    :data:`METRIC_COLUMNS`), ``clv_params``, ``clv_holdout``, ``macros`` (name -> parameters)
    ``features`` (the columns the models use) and ``scores`` (the DataFrame written to
    ``output_table``; with ``output_table=None`` nothing is written and a dbt Python model can
    return ``summary["scores"]`` for dbt to materialise).

    ``propensity_model`` is passed to :class:`PropensityModel` (``"auto"``, ``"linear"``,
    ``"gbm"``). The ``churn_score`` / ``purchase_score`` macros are always the linear
    candidate; with ``propensity_model="linear"`` they equal the table's probabilities.

    ``discount_rate`` is the monthly rate of ``clv_12m`` (12 months of 30 days).
    ``expected_purchases_90d`` is always over 90 days (``T`` is in days); ``horizon_days``
    is the label window of the training table and the window of the CLV holdout check
    (BG/NBD + Gamma-Gamma fitted at the cutoff, scored on the window's purchases and spend).
    """
    wh = Warehouse.open(wh)
    if output_table is not None:
        split_name(output_table)
    labels = [churn_label, purchase_label]
    training = _frame(wh, training_table, [id_column, *labels])
    scoring = _frame(wh, scoring_table, [id_column, *LIFETIMES_COLUMNS])
    skip = {id_column, churn_label, purchase_label, spend_label, *exclude}
    features = [c for c in training.columns if c in set(scoring.columns) and c not in skip]
    if not features:
        raise InputError(
            f"tables {training_table} and {scoring_table} share no feature column besides "
            f"{id_column} and the labels"
        )

    bg, gg, known = _fit_clv(scoring, scoring_table)  # cheap: fail fast on bad summaries
    fit = (training, features)
    churn = _fit_propensity(*fit, churn_label, training_table, propensity_model, random_state)
    purchase = _fit_propensity(*fit, purchase_label, training_table, propensity_model, random_state)
    holdout = _clv_holdout(training, training_table, horizon_days, purchase_label, spend_label)

    # ----------------------------------------------------------------- registry
    used = [
        c for c in features if c in set(churn.feature_names_in_) | set(purchase.feature_names_in_)
    ]
    common = {"horizon_days": horizon_days, "training_table": training_table, "features": used}
    versions = {
        "churn": _save(wh, "churn", churn, {**common, "label": churn_label}, churn.metrics_),
        "purchase": _save(
            wh, "purchase", purchase, {**common, "label": purchase_label}, purchase.metrics_
        ),
        "bgnbd": _save(
            wh, "bgnbd", bg, bg.params_, {"log_likelihood": bg.log_likelihood_, **holdout}
        ),
        "gamma_gamma": _save(wh, "gamma_gamma", gg, gg.params_, _gg_metrics(gg, scoring, known)),
    }
    bundle = registry.pack({}, {"components": versions, **common})
    model_version = registry.save_model(
        wh, "customer_scores", bundle, params={**common, "components": versions}
    )

    # ----------------------------------------------------------------- scores
    cols = _summary_columns(scoring)
    f, r, T, m = (cols[c] for c in LIFETIMES_COLUMNS)
    reasons = churn.reason_codes(scoring[features])
    out = pd.DataFrame(
        {
            id_column: scoring[id_column].to_numpy(),
            "churn_probability": churn.predict_proba(scoring[features])[:, 1],
            "purchase_probability": purchase.predict_proba(scoring[features])[:, 1],
            "churn_reason_1": reasons["reason_1"].astype(object),
            "churn_reason_2": reasons["reason_2"].astype(object),
            "churn_reason_3": reasons["reason_3"].astype(object),
            "p_alive": bg.p_alive(f, r, T),
            "expected_purchases_90d": bg.expected_purchases(90.0, f, r, T),
            "expected_avg_order_value": np.where(
                known, gg.expected_value(f, np.nan_to_num(m)), np.nan
            ),
            "clv_12m": np.where(
                known,
                clv(bg, gg, f, r, T, np.nan_to_num(m), months=12, discount_rate=discount_rate),
                np.nan,
            ),
            "model_version": model_version,
        }
    )
    if out[id_column].duplicated().any():
        raise InputError(
            f"table {scoring_table}: {int(out[id_column].duplicated().sum())} duplicated "
            f"{id_column} value(s) in {len(out)} rows"
        )
    rows = len(out)
    if output_table is not None:  # None: the caller (e.g. a dbt Python model) writes `scores`
        rows = wh.write(output_table, out, primary_key=(id_column,))

    # ----------------------------------------------------------------- macros
    macros = {}
    for name, model in (("churn_score", churn), ("purchase_score", purchase)):
        params, body = model.to_sql(model="linear")
        macros[f"{macro_schema}.{name}"] = (params, body)
    ep, ev = f"{macro_schema}.expected_purchases", f"{macro_schema}.expected_value"
    macros[f"{macro_schema}.p_alive"] = (["frequency", "recency", "T"], bg.p_alive_sql())
    macros[ep] = (["horizon", "frequency", "recency", "T"], bg.expected_purchases_sql())
    macros[ev] = (["frequency", "monetary_value"], gg.expected_value_sql())
    macros[f"{macro_schema}.clv_12m"] = (
        list(LIFETIMES_COLUMNS),
        clv_sql(ep, ev, months=12, discount_rate=discount_rate),
    )
    for name, (params, body) in macros.items():
        wh.publish_macro(name, params, body)

    metrics = [
        _metric_row(name, model.metrics_, versions[name])
        for name, model in (("churn", churn), ("purchase", purchase))
    ]
    metrics.append(
        {
            "model": "clv",
            "estimator": "bgnbd+gamma_gamma",
            "calibration": None,
            "roc_auc": holdout.get("roc_auc"),
            "pr_auc": None,
            "brier": None,
            "brier_uncalibrated": None,
            "top_decile_lift": None,
            "n_test": holdout.get("n_test"),
            "version": versions["bgnbd"],
        }
    )
    return {
        "rows": rows,
        "output_table": output_table,
        "horizon_days": horizon_days,
        "model_version": model_version,
        "versions": versions,
        "metrics": metrics,
        "clv_params": {**bg.params_, **gg.params_},
        "clv_holdout": holdout,
        "macros": {name: params for name, (params, _) in macros.items()},
        "features": used,
        "scores": out,
    }


def _metric_row(name: str, metrics: dict[str, Any], version: str) -> dict[str, Any]:
    return {
        "model": name,
        "estimator": metrics["model"],
        "calibration": metrics["calibration"],
        **{k: metrics[k] for k in ("roc_auc", "pr_auc", "brier", "brier_uncalibrated")},
        "top_decile_lift": metrics["top_decile_lift"],
        "n_test": metrics["n_test"],
        "version": version,
    }


def metrics_rows(summary: dict[str, Any]) -> list[list[str]]:
    """The summary's metrics as text cells in :data:`METRIC_COLUMNS` order (for a CLI table)."""
    cells = []
    for row in summary["metrics"]:
        line = []
        for col in METRIC_COLUMNS:
            value = row.get(col)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                line.append("-")
            elif isinstance(value, float):
                line.append(f"{value:.3f}")
            else:
                line.append(str(value))
        cells.append(line)
    return cells
