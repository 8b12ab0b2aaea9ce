"""Propensity models (churn, next-period purchase) on any feature table with a binary label.

:class:`PropensityModel` follows scikit-learn's conventions (``fit(X, y)`` / ``predict_proba``)
and takes a pandas DataFrame or Arrow table, never a connection.

* **Preprocessing** is the one the segmenter uses (:mod:`pyprofile.segment`): numeric and
  boolean columns are median-imputed (plus a ``__missing`` indicator when the training rows
  had nulls), log-transformed when heavy-tailed, robust-scaled and clipped; string columns
  with at most ``max_categories`` levels are one-hot encoded; id and date columns are dropped.
  It is fitted on the training split only.
* **Candidates**: an L2-regularised logistic regression (the baseline, exportable to SQL) and
  scikit-learn's ``HistGradientBoostingClassifier``; with ``model="auto"`` the one with the
  higher validation ROC AUC is kept (ties go to the linear model).
* **Calibration**: Platt scaling (``sigmoid``) or isotonic regression on the model's raw score,
  fitted on the validation split. ``"auto"`` keeps whichever of Platt, isotonic and ``"none"``
  (the model's own log-loss probabilities) has the lowest 5-fold cross-validated Brier score
  on that split, so recalibration is applied when it helps and never makes Brier worse in
  expectation (logistic regression and log-loss boosting are often calibrated already).
* **Honest metrics** (``metrics_``) come from a stratified test split the model never saw:
  ROC AUC, PR AUC (average precision), Brier score (calibrated and uncalibrated) and the lift
  in the top decile.
* **Reason codes** (:meth:`PropensityModel.reason_codes`): the top features pushing each
  score up. Linear model: coefficient x preprocessed (standardised) value, summed over a
  column's one-hot levels. Gradient boosting: occlusion, i.e. how much the raw score (log-odds)
  falls when the column is reset to the training reference customer (median of each numeric
  column, most frequent level of each categorical one).
* **SQL**: :meth:`PropensityModel.to_sql` writes the linear model (preprocessing, logistic
  score and calibration) as a macro body equal to ``predict_proba(X, model="linear")``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.base import Estimator
from pyprofile.models.data import as_frame, sample_rows
from pyprofile.models.metrics import (
    binary_labels,
    brier_score,
    calibration_table,
    classification_metrics,
    lift_table,
    roc_auc,
)
from pyprofile.models.preprocessing import apply_preprocessing, fit_preprocessing, output_names
from pyprofile.models.trees import occlusion_contributions, raw_score, tree_arrays

__all__ = ["PropensityModel"]

MODELS = ("linear", "gbm")
CALIBRATIONS = ("sigmoid", "isotonic", "none")
_MIN_PER_CLASS = 10


# ---------------------------------------------------------------------------- calibration
def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _fit_calibrator(z: np.ndarray, y: np.ndarray, method: str) -> dict[str, Any]:
    if method == "none":  # the model's own log-odds: p = expit(z)
        return {"method": "none", "a": 1.0, "b": 0.0}
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
        return {"method": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(z, y)
    return {
        "method": "isotonic",
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


def _apply_calibrator(cal: dict[str, Any], z: np.ndarray) -> np.ndarray:
    if cal["method"] in ("sigmoid", "none"):
        return _expit(cal["a"] * z + cal["b"])
    xs, ys = np.asarray(cal["x"]), np.asarray(cal["y"])
    if xs.size == 1:
        return np.full(z.shape, ys[0])
    # piecewise linear with flat ends, written out like the SQL (not np.interp) so both agree
    j = np.clip(np.searchsorted(xs, z, side="left") - 1, 0, xs.size - 2)
    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    out = ys[j] + (z - xs[j]) * slope
    return np.where(z <= xs[0], ys[0], np.where(z >= xs[-1], ys[-1], out))


def _choose_calibration(z: np.ndarray, y: np.ndarray, random_state: int) -> str:
    """The calibration (or none) with the lowest 5-fold cross-validated Brier score."""
    from sklearn.model_selection import StratifiedKFold

    n_splits = min(5, int(y.sum()), int(y.size - y.sum()))
    if n_splits < 2:  # too few of a class to cross-validate: the 2-parameter Platt fit
        return "sigmoid"
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = {}
    for method in CALIBRATIONS:
        pred = np.empty_like(z)
        for fit_idx, held_idx in folds.split(z, y):
            pred[held_idx] = _apply_calibrator(
                _fit_calibrator(z[fit_idx], y[fit_idx], method), z[held_idx]
            )
        scores[method] = brier_score(y, pred)
    return min(CALIBRATIONS, key=lambda m: scores[m])


def _reference_values(frame: pd.DataFrame, spec: list[dict[str, Any]]) -> dict[str, Any]:
    """The typical customer: each numeric column's median, each categorical's commonest level."""
    values: dict[str, Any] = {}
    for item in spec:
        if item["kind"] == "numeric":
            values[item["column"]] = item["fill"]
        else:
            counts = frame[item["column"]].dropna().astype(str).value_counts()
            values[item["column"]] = str(counts.index[0]) if len(counts) else None
    return values


# ---------------------------------------------------------------------------- estimator
class PropensityModel(Estimator):
    """Calibrated binary propensity model: logistic regression vs gradient boosting.

    Parameters
    ----------
    model : ``"auto"`` (higher validation ROC AUC), ``"linear"`` or ``"gbm"``.
    C : inverse L2 regularisation strength of the logistic regression.
    calibration : ``"auto"``, ``"sigmoid"`` (Platt), ``"isotonic"`` or ``"none"``.
    columns : feature columns (None: every usable column except ``exclude`` and the label).
    exclude : columns never used as features (ids and dates are always dropped).
    max_categories : string columns with more distinct values are dropped.
    clip : preprocessed numeric values are clipped to ``[-clip, clip]``.
    validation_fraction : share of the non-test rows used for model choice and calibration.
    test_fraction : share of rows held out for the reported metrics.
    max_rows : fit (and measure) on a stratified sample of at most this many rows, so that the
        cost stops growing with the table; scoring still covers every row.
    gbm_max_iter, gbm_learning_rate, gbm_max_leaf_nodes : gradient boosting settings.
    threads : OpenMP threads for gradient boosting (None: the library default).
    random_state : seed of the splits and of the gradient boosting.
    """

    fitted_attribute: ClassVar[str] = "spec_"
    artifact_format: ClassVar[str] = "pyprofile.propensity/2"

    def __init__(
        self,
        *,
        model: str = "auto",
        C: float = 1.0,
        calibration: str = "auto",
        columns: list[str] | None = None,
        exclude: tuple[str, ...] = (),
        max_categories: int = 20,
        clip: float = 10.0,
        validation_fraction: float = 0.25,
        test_fraction: float = 0.2,
        max_rows: int | None = 200_000,
        gbm_max_iter: int = 300,
        gbm_learning_rate: float = 0.05,
        gbm_max_leaf_nodes: int = 15,
        threads: int | None = 1,
        random_state: int = 0,
    ):
        self.model = model
        self.C = C
        self.calibration = calibration
        self.columns = columns
        self.exclude = exclude
        self.max_categories = max_categories
        self.clip = clip
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.max_rows = max_rows
        self.gbm_max_iter = gbm_max_iter
        self.gbm_learning_rate = gbm_learning_rate
        self.gbm_max_leaf_nodes = gbm_max_leaf_nodes
        self.threads = threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if self.model not in ("auto", *MODELS):
            raise InputError(f"model must be 'auto', 'linear' or 'gbm', not {self.model!r}")
        if self.calibration not in ("auto", *CALIBRATIONS):
            raise InputError(
                "calibration must be 'auto', 'sigmoid', 'isotonic' or 'none', "
                f"not {self.calibration!r}"
            )
        for name in ("validation_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise InputError(f"{name} must lie strictly between 0 and 1")

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.model_selection import train_test_split

        idx = np.arange(y.shape[0])
        rest, test = train_test_split(
            idx, test_size=self.test_fraction, stratify=y, random_state=self.random_state
        )
        train, val = train_test_split(
            rest,
            test_size=self.validation_fraction,
            stratify=y[rest],
            random_state=self.random_state,
        )
        return np.sort(train), np.sort(val), np.sort(test)

    def fit(self, X: Any, y: Any) -> PropensityModel:
        """Fit on features ``X`` and 0/1 labels ``y`` (an array, or the name of a column of X)."""
        self._check_params()
        frame = as_frame(X)
        label = y if isinstance(y, str) else "label"
        if isinstance(y, str):
            if y not in frame.columns:
                raise InputError(f"feature table ({len(frame)} rows) has no label column {y!r}")
            y = frame[y]
        yv = self._labels(y, label, len(frame))
        frame, yv = self._capped(frame, yv)
        train, val, test = self._split(yv)
        D = self._fit_design(frame, self._feature_columns(frame, label), train)
        # the linear model is always fitted: it is the one exported to SQL
        wanted = MODELS if self.model == "auto" else (self.model,)
        fitted = ("linear", "gbm") if "gbm" in wanted else ("linear",)
        self.linear_ = self._fit_linear(D[train], yv[train])
        self.gbm_arrays_ = self._gbm = None
        if "gbm" in fitted:
            self._gbm = self._fit_gbm(D[train], yv[train])
            self.gbm_arrays_ = tree_arrays(self._gbm)
        self.calibrators_: dict[str, dict[str, Any]] = {}
        self.candidates_: dict[str, dict[str, float]] = {}
        for name in fitted:
            self._calibrate(name, D, yv, val, test)
        self.best_model_ = max(
            wanted, key=lambda m: (self.candidates_[m]["validation_roc_auc"], m == "linear")
        )
        self._record_metrics(D, yv, train, val, test)
        return self

    def _capped(self, frame: pd.DataFrame, yv: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """At most ``max_rows`` rows, sampled with the label's proportions kept."""
        keep = sample_rows(len(yv), self.max_rows, self.random_state, strata=yv)
        if keep is None:
            return frame, yv
        return frame.iloc[keep].reset_index(drop=True), yv[keep]

    @staticmethod
    def _labels(y: Any, label: str, n_rows: int) -> np.ndarray:
        """The 0/1 labels, checked for length and for enough of both outcomes."""
        yv = binary_labels(y, label)
        if yv.shape[0] != n_rows:
            raise InputError(f"{n_rows} feature rows but {yv.shape[0]} labels")
        n_pos = int(yv.sum())
        n_neg = int(yv.shape[0] - n_pos)
        if n_pos == 0 or n_neg == 0:
            value = int(yv[0]) if len(yv) else "-"
            raise InputError(
                f"label {label} has a single class: all {len(yv)} rows are {value} "
                "(e.g. every customer churned); a propensity model needs both outcomes"
            )
        if min(n_pos, n_neg) < _MIN_PER_CLASS:
            raise InputError(
                f"label {label} has {n_pos} positive and {n_neg} negative rows of {len(yv)}; "
                f"need at least {_MIN_PER_CLASS} of each"
            )
        return yv

    def _fit_design(self, frame: pd.DataFrame, columns: list[str], train: np.ndarray):
        """Fit the preprocessing on the training rows; the design matrix of every row."""
        spec, dropped = fit_preprocessing(
            frame.iloc[train], columns, max_categories=self.max_categories, clip=self.clip
        )
        if not spec:
            raise InputError(
                f"feature table ({len(frame)} rows) has no usable feature column: {dropped}"
            )
        self.spec_ = spec
        self.dropped_columns_ = dropped
        self.feature_names_in_ = [item["column"] for item in spec]
        self.design_names_ = output_names(spec)
        self.reference_ = _reference_values(frame.iloc[train], spec)
        return apply_preprocessing(frame, spec)

    def _calibrate(self, name: str, D: np.ndarray, yv: np.ndarray, val, test) -> None:
        """Fit candidate ``name``'s calibration on the validation rows; score it on the test."""
        z_val = self._raw(D[val], name)
        method = self.calibration
        if method == "auto":
            method = _choose_calibration(z_val, yv[val], self.random_state)
        self.calibrators_[name] = _fit_calibrator(z_val, yv[val], method)
        z_test = self._raw(D[test], name)
        cal = _apply_calibrator(self.calibrators_[name], z_test)
        metrics = classification_metrics(yv[test], cal)
        metrics["brier_uncalibrated"] = brier_score(yv[test], _expit(z_test))
        metrics["validation_roc_auc"] = roc_auc(yv[val], z_val)
        self.candidates_[name] = metrics

    def _record_metrics(self, D, yv, train, val, test) -> None:
        """``metrics_``: the kept model's held-out metrics, its lift and calibration tables."""
        best = self.best_model_
        held_out = _apply_calibrator(self.calibrators_[best], self._raw(D[test], best))
        self.metrics_ = {
            **self.candidates_[best],
            "model": best,
            "calibration": self.calibrators_[best]["method"],
            "n_train": int(train.size),
            "n_validation": int(val.size),
            "n_test": int(test.size),
            "n_features": len(self.feature_names_in_),
        }
        for name, metrics in self.candidates_.items():
            self.metrics_[f"validation_roc_auc_{name}"] = metrics["validation_roc_auc"]
        self.metrics_["lift_table"] = lift_table(yv[test], held_out).to_dict(orient="records")
        self.metrics_["calibration_table"] = calibration_table(yv[test], held_out).to_dict(
            orient="records"
        )

    def _feature_columns(self, frame: pd.DataFrame, label: str) -> list[str]:
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise InputError(
                    f"feature table ({len(frame)} rows) lacks column(s) {', '.join(missing)}"
                )
            return [c for c in self.columns if c != label]
        skip = {*self.exclude, label}
        return [c for c in frame.columns if c not in skip]

    def _fit_linear(self, D: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=self.C, max_iter=5000).fit(D, y)
        return {"coef": lr.coef_[0].astype(float), "intercept": float(lr.intercept_[0])}

    def _fit_gbm(self, D: np.ndarray, y: np.ndarray):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        gbm = HistGradientBoostingClassifier(
            max_iter=self.gbm_max_iter,
            learning_rate=self.gbm_learning_rate,
            max_leaf_nodes=self.gbm_max_leaf_nodes,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=20,
            random_state=self.random_state,
        )
        # OpenMP threads spin badly on small shared machines: 1 thread by default
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return gbm.fit(D, y)

    # ------------------------------------------------------------------ scoring
    def _which(self, model: str | None) -> str:
        name = self.best_model_ if model is None else model
        if name not in self.calibrators_:
            raise InputError(
                f"model {name!r} was not fitted; fitted: {', '.join(self.calibrators_)}"
            )
        return name

    def _raw(self, D: np.ndarray, name: str) -> np.ndarray:
        if name == "linear":
            return D @ self.linear_["coef"] + self.linear_["intercept"]
        if getattr(self, "_gbm", None) is not None:  # fitted here: scikit-learn's fast walk
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=self.threads, user_api="openmp"):
                return self._gbm.decision_function(D)
        return raw_score(self.gbm_arrays_, D)  # loaded from the registry: same trees in numpy

    def _design(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return apply_preprocessing(as_frame(X), self.spec_)

    def decision_function(self, X: Any, *, model: str | None = None) -> np.ndarray:
        """Uncalibrated raw score (log-odds) of the chosen (or named) model."""
        return self._raw(self._design(X), self._which(model))

    def predict_proba(self, X: Any, *, model: str | None = None) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): columns P(y=0), P(y=1)."""
        self._check_fitted()
        name = self._which(model)
        z = self.decision_function(X, model=name)
        p = _apply_calibrator(self.calibrators_[name], z)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any, *, threshold: float = 0.5, model: str | None = None) -> np.ndarray:
        return (self.predict_proba(X, model=model)[:, 1] >= threshold).astype(np.int64)

    def contributions(self, X: Any, *, model: str | None = None) -> pd.DataFrame:
        """Per-row, per-feature push on the raw score (see the module docstring)."""
        self._check_fitted()
        name = self._which(model)
        D = self._design(X)
        index = {c: i for i, c in enumerate(self.feature_names_in_)}
        groups = np.array([index[c] for c in self._design_sources()])
        if name == "linear":
            per_design = D * self.linear_["coef"]
            out = np.zeros((D.shape[0], len(self.feature_names_in_)))
            for j, g in enumerate(groups):
                out[:, g] += per_design[:, j]
        else:  # occlusion, re-walking only the trees and rows it changes
            reference, width = self._reference_row(), len(self.feature_names_in_)
            out = occlusion_contributions(self.gbm_arrays_, D, reference, groups, width)
        return pd.DataFrame(out, columns=self.feature_names_in_)

    def _design_sources(self) -> list[str]:
        """The source column of each design column (indicators and levels included)."""
        names = []
        for item in self.spec_:
            if item["kind"] == "numeric":
                names += [item["column"]] * (1 + int(item["indicator"]))
            else:
                names += [item["column"]] * (len(item["levels"]) + int(item["null_level"]))
        return names

    def _reference_row(self) -> np.ndarray:
        """Design vector of the reference customer (``reference_``)."""
        frame = pd.DataFrame({c: pd.Series([v], dtype=object) for c, v in self.reference_.items()})
        return apply_preprocessing(frame, self.spec_)[0]

    def reason_codes(self, X: Any, *, k: int = 3, model: str | None = None) -> pd.DataFrame:
        """Top ``k`` features pushing each score up (None where fewer push up).

        Categorical features are named ``column=value``.
        """
        frame = as_frame(X)
        contrib = self.contributions(frame, model=model)
        values = contrib.to_numpy()
        order = np.argsort(-values, axis=1, kind="mergesort")[:, :k]
        cats = {item["column"] for item in self.spec_ if item["kind"] == "categorical"}
        names = np.array(self.feature_names_in_, dtype=object)
        out = {}
        for i in range(k):
            if i >= values.shape[1]:
                out[f"reason_{i + 1}"] = [None] * len(frame)
                continue
            idx = order[:, i]
            picked = values[np.arange(len(frame)), idx]
            labels = names[idx].copy()
            for c in cats:
                rows = labels == c
                if rows.any():
                    raw = frame[c].to_numpy(dtype=object)[rows]
                    labels[rows] = [f"{c}=<null>" if pd.isna(v) else f"{c}={v}" for v in raw]
            labels[~(picked > 0)] = None
            out[f"reason_{i + 1}"] = labels
        return pd.DataFrame(out)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            "linear_coef": self.linear_["coef"],
            "linear_intercept": np.array([self.linear_["intercept"]]),
        }
        if self.gbm_arrays_ is not None:
            arrays.update(self.gbm_arrays_)
        state = {
            "spec": self.spec_,
            "dropped_columns": self.dropped_columns_,
            "reference": self.reference_,
            "calibrators": self.calibrators_,
            "best_model": self.best_model_,
            "metrics": self.metrics_,
            "candidates": self.candidates_,
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.spec_ = state["spec"]
        self.dropped_columns_ = state["dropped_columns"]
        self.reference_ = state["reference"]
        self.feature_names_in_ = [item["column"] for item in self.spec_]
        self.design_names_ = output_names(self.spec_)
        self.linear_ = {
            "coef": np.asarray(arrays["linear_coef"], dtype=float),
            "intercept": float(arrays["linear_intercept"][0]),
        }
        gbm = {k: v for k, v in arrays.items() if k.startswith("gbm_")}
        self.gbm_arrays_ = gbm or None
        self._gbm = None
        self.calibrators_ = state["calibrators"]
        self.best_model_ = state["best_model"]
        self.metrics_ = state["metrics"]
        self.candidates_ = state["candidates"]
