"""Propensity and lifetime value on a warehouse: train, score every customer, publish.

:func:`run_scoring` reads the point-in-time training table (features at ``as_of - horizon``
plus the labels observed in ``(cutoff, as_of]``) and the scoring table (the same features at
``as_of``), trains the churn and purchase models (:class:`PropensityModel`: ``"auto"``,
``"linear"`` or ``"gbm"`` by ``propensity_model``), fits BG/NBD + Gamma-Gamma on the
lifetimes-style columns at ``as_of`` and, in one transaction, stores every model with its
metrics in ``ml.model_registry``, writes one row per customer to ``ml.customer_scores`` and
publishes the scoring functions (``ml.churn_score``, ``ml.purchase_score``, ``ml.p_alive``,
``ml.expected_purchases``, ``ml.expected_value``, ``ml.clv_12m``). The ``churn_score`` and
``purchase_score`` functions are always the linear candidate; with
``propensity_model="linear"`` they equal the table's probabilities.

``discount_rate`` is the monthly rate of ``clv_12m`` (12 months of 30 days).
``expected_purchases_90d`` is always over 90 days (``T`` is in days); ``horizon_days`` is the
label window of the training table and the window of the CLV holdout check (BG/NBD +
Gamma-Gamma fitted at the cutoff, scored on the window's purchases and spend).

The summary has ``rows`` (customers scored), ``output_table``, ``model_version``,
``versions`` (registry version per model), ``metrics`` (one dict per model with
:data:`METRIC_COLUMNS`), ``clv_params``, ``clv_holdout``, ``macros`` (name -> parameters),
``features`` (the columns the models use) and ``scores`` (the DataFrame written to
``output_table``; with ``output_table=None`` no table is written).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.flows.publish import (
    ModelEntry,
    check_unique,
    observation_date,
    publish,
    read_frame,
    stamp,
)
from pyprofile.models.artifact import pack
from pyprofile.models.clv import BGNBD, GammaGamma, clv
from pyprofile.models.metrics import roc_auc
from pyprofile.models.propensity import PropensityModel
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.functions import LIFETIMES_COLUMNS, scoring_functions
from pyprofile.warehouse.sql import split_name

__all__ = ["METRIC_COLUMNS", "SCORE_COLUMNS", "metrics_rows", "run_scoring"]

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


def run_scoring(
    wh: Warehouse | str,
    *,
    horizon_days: int = 90,
    training_table: str = tables.TRAINING,
    scoring_table: str = tables.FEATURES,
    output_table: str | None = tables.SCORES,
    id_column: str = "customer_id",
    churn_label: str = "churned",
    purchase_label: str = "purchased",
    spend_label: str = "spend_in_window",
    exclude: Sequence[str] = (),
    propensity_model: str = "auto",
    discount_rate: float = 0.01,
    random_state: int = 0,
) -> dict[str, Any]:
    """Train, score every customer at ``as_of`` and publish; returns a summary dict (see the
    module docstring for its keys and for what each setting means)."""
    wh = Warehouse.open(wh)
    if output_table is not None:
        split_name(output_table)
    training = read_frame(wh, training_table, [id_column, churn_label, purchase_label])
    scoring = read_frame(wh, scoring_table, [id_column, *LIFETIMES_COLUMNS])
    skip = {id_column, churn_label, purchase_label, spend_label, *exclude}
    features = _shared_features(training, scoring, skip, (training_table, scoring_table))
    bg, gg, known = _fit_clv(scoring, scoring_table)  # cheap: fail fast on bad summaries
    fit = (training, features)
    churn = _fit_propensity(*fit, churn_label, training_table, propensity_model, random_state)
    purchase = _fit_propensity(*fit, purchase_label, training_table, propensity_model, random_state)
    holdout = _clv_holdout(training, training_table, horizon_days, purchase_label, spend_label)
    used = [
        c for c in features if c in set(churn.feature_names_in_) | set(purchase.feature_names_in_)
    ]
    common = {"horizon_days": horizon_days, "training_table": training_table, "features": used}
    entries = _entries(common, (churn, churn_label), (purchase, purchase_label), bg, gg)
    entries["gamma_gamma"].metrics.update(_gg_metrics(gg, scoring, known))
    entries["bgnbd"].metrics.update(holdout)
    versions = {name: entry.version for name, entry in entries.items()}
    bundle_meta = {**common, "components": versions}
    bundle = ModelEntry(tables.SCORES_MODEL, pack({}, bundle_meta), bundle_meta)
    out = _scores(scoring, features, id_column, churn, purchase, bg, gg, known, discount_rate)
    out = stamp(out, observation_date(wh, scoring_table), bundle.version)
    check_unique(out, [id_column], scoring_table)
    functions = scoring_functions(churn, purchase, bg, gg, discount_rate=discount_rate)
    written = {output_table: out} if output_table is not None else None
    counts = publish(wh, models=[*entries.values(), bundle], tables=written, functions=functions)
    return {
        "rows": counts.get(output_table, len(out)),
        "output_table": output_table,
        "horizon_days": horizon_days,
        "model_version": bundle.version,
        "versions": versions,
        "metrics": _metric_rows(churn, purchase, versions, holdout),
        "clv_params": {**bg.params_, **gg.params_},
        "clv_holdout": holdout,
        "macros": {f.name: f.params for f in functions},
        "features": used,
        "scores": out,
    }


def _shared_features(training, scoring, skip: set[str], names: tuple[str, str]) -> list[str]:
    """The feature columns both tables have (labels, ids and ``skip`` left out)."""
    features = [c for c in training.columns if c in set(scoring.columns) and c not in skip]
    if not features:
        raise InputError(
            f"tables {names[0]} and {names[1]} share no feature column besides the id and "
            "the labels"
        )
    return features


def _entries(common: dict, churn, purchase, bg: BGNBD, gg: GammaGamma) -> dict[str, ModelEntry]:
    """The registry entries of the four models (the scores bundle refers to them)."""
    (churn_model, churn_label), (purchase_model, purchase_label) = churn, purchase
    return {
        "churn": ModelEntry(
            tables.CHURN_MODEL,
            churn_model.to_artifact(),
            {**common, "label": churn_label},
            churn_model.metrics_,
        ),
        "purchase": ModelEntry(
            tables.PURCHASE_MODEL,
            purchase_model.to_artifact(),
            {**common, "label": purchase_label},
            purchase_model.metrics_,
        ),
        "bgnbd": ModelEntry(
            tables.BGNBD_MODEL, bg.to_artifact(), bg.params_, {"log_likelihood": bg.log_likelihood_}
        ),
        "gamma_gamma": ModelEntry(tables.GAMMA_GAMMA_MODEL, gg.to_artifact(), gg.params_, {}),
    }


def _scores(
    scoring: pd.DataFrame,
    features: list[str],
    id_column: str,
    churn: PropensityModel,
    purchase: PropensityModel,
    bg: BGNBD,
    gg: GammaGamma,
    known: np.ndarray,
    discount_rate: float,
) -> pd.DataFrame:
    """One row per customer of the scoring table: every score of ``ml.customer_scores``."""
    cols = _summary_columns(scoring)
    f, r, T, m = (cols[c] for c in LIFETIMES_COLUMNS)
    reasons = churn.reason_codes(scoring[features])
    return pd.DataFrame(
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
        }
    )


def _metric_rows(churn, purchase, versions: dict[str, str], holdout: dict) -> list[dict]:
    rows = [
        _metric_row(name, model.metrics_, versions[name])
        for name, model in (("churn", churn), ("purchase", purchase))
    ]
    rows.append(
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
    return rows


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
