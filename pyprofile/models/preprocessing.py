"""Feature preparation shared by the segmenter and the propensity model.

All choices are fitted on the training rows and stored as a JSON-able spec, which
:func:`apply_preprocessing` (numpy, float64) and :func:`pyprofile.warehouse.scoring_sql.
preprocessing_sql` (SQL) apply with the same arithmetic:

* **Columns.** Every numeric or boolean column is a feature; string columns with at most
  ``max_categories`` distinct values are one-hot encoded (one 0/1 column per level, plus one
  for null when the training data has nulls; unseen levels score all zeros). Id, date and
  timestamp columns, strings with more levels, and columns that are constant on the training
  rows are dropped; the dropped columns and why are returned.
* **Nulls.** A numeric null is imputed with the column's training median, and a 0/1
  ``<column>__missing`` indicator is added when the training data had nulls in that column.
* **Heavy tails.** Money and counts are log-transformed, ``ln(1 + max(x, 0))``, when the
  column is non-negative and either its name says it is an amount or a count (suffixes
  ``_amount``, ``_count``, ``_events``, ``_value``, names ``frequency``, ``distinct_products``)
  or its sample skewness exceeds 1.
* **Scaling.** Robust: ``(x - median) / (IQR / 1.349)`` (the IQR scaled to match a normal
  standard deviation); when the IQR is 0 (sparse columns) the standard deviation is used.
  Scaled values are clipped to ``[-clip, clip]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError

_LOG_SUFFIXES = ("_amount", "_count", "_events", "_value")
_LOG_NAMES = ("frequency", "distinct_products", "session_count")
_ID_SUFFIX = "_id"
_IQR_TO_STD = 1.349


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
