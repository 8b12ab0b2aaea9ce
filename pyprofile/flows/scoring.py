"""Propensity and lifetime value on a warehouse: train, score every customer, publish.

:func:`run_scoring` has two independent parts; one that cannot be fitted is skipped with its
reason (in the summary and the registry) and never takes the other down:

* **Propensity** - one model of one label: a :class:`PropensityModel` (``"auto"``, ``"linear"``
  or ``"gbm"`` by ``propensity_model``) of ``churned`` on the point-in-time training table
  (features at ``as_of - horizon``, labels observed in ``(cutoff, as_of]``), scoring the same
  features at ``as_of``. ``purchase_probability`` is ``1 - churn_probability`` by construction
  (``churned`` is exactly "no purchase in the window").
* **Lifetime value** - BG/NBD + Gamma-Gamma on the lifetimes-style columns at ``as_of``:
  ``p_alive``, ``expected_purchases_90d``, ``expected_avg_order_value`` and ``clv_12m``
  (discounted at ``discount_rate`` per month, 12 months of 30 days). BG/NBD gives P(alive) = 1
  to every customer without a repeat purchase (it cannot see a one-time buyer drop out);
  churn is what answers "will they buy again" for them.

In one transaction the flow registers the models (``churn``, ``bgnbd``, ``gamma_gamma`` and a
``customer_scores`` bundle naming them), writes one row per customer to ``ml.customer_scores``
and persists the scoring functions of the fitted parts: ``ml.churn_score`` and
``ml.purchase_score`` compute exactly the stored probabilities (whichever model was kept:
linear, or boosted trees written as nested CASE expressions), and ``ml.p_alive``,
``ml.expected_purchases``, ``ml.expected_value``, ``ml.clv_12m`` the lifetime values. The
functions of a skipped part are dropped, so none is left from an earlier run.

With ``sequences`` (a table of every customer's events; off by default, see
:mod:`pyprofile.flows.embedding_features`) the churn model also takes sequence embeddings: a
sequence model fitted only on the events up to the training cutoff embeds the training
customers from their events up to the cutoff and, for scoring, every customer from their
events up to as_of; it is registered as ``churn_sequence_embedder``. SQL cannot compute the
embeddings, so ``ml.churn_score`` / ``ml.purchase_score`` are then dropped, not persisted (the
stored scores are the numbers to use; the diagnostics say so).

The summary has ``rows``, ``output_table``, ``model_version``, ``versions`` (per model),
``metrics`` (one dict per model with :data:`METRIC_COLUMNS`), ``skipped`` (part -> reason),
``clv_params``, ``clv_holdout``, ``macros`` (name -> parameters), ``features`` and ``scores``
(the DataFrame written). Churn reasons are sentences in the words of the feature dictionary,
with the customer's value and the typical customer's (``currency`` written with amounts).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pyprofile.errors import InputError, PyprofileError
from pyprofile.flows.embedding_features import (
    Embedder,
    embedding_columns,
    feature_date,
    fit_embedder,
    read_history,
)
from pyprofile.flows.publish import (
    ModelEntry,
    observation_date,
    publish,
    stamp,
)
from pyprofile.models.artifact import pack
from pyprofile.models.clv import BGNBD, GammaGamma, clv
from pyprofile.models.dictionary import reason
from pyprofile.models.metrics import roc_auc
from pyprofile.models.propensity import PropensityModel
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.functions import LIFETIMES_COLUMNS, clv_functions, propensity_functions
from pyprofile.warehouse.sql import qualified, quote, split_name

__all__ = ["METRIC_COLUMNS", "SCORE_COLUMNS", "metrics_rows", "run_scoring"]

# Gamma-Gamma assumes order value independent of purchase frequency; above this correlation
# (among repeat buyers) its expected values are flagged as unreliable.
GG_MAX_CORRELATION = 0.3
PROPENSITY_COLUMNS = ("churn_probability", "purchase_probability")
TRAINING_ROWS = 200_000  # the propensity model trains on at most this many rows (a sample)
SCORING_BATCH = 100_000  # customers scored per batch
REASON_COLUMNS = ("churn_reason_1", "churn_reason_2", "churn_reason_3")
CLV_COLUMNS = ("p_alive", "expected_purchases_90d", "expected_avg_order_value", "clv_12m")
SCORE_COLUMNS = (*PROPENSITY_COLUMNS, *REASON_COLUMNS, *CLV_COLUMNS, "model_version")
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


@dataclass
class _Propensity:
    model: PropensityModel
    label: str
    features: list[str]


@dataclass
class _Embeddings:
    """The churn model's sequence embeddings: the fitted embedder, every event, and as_of."""

    embedder: Embedder
    events: pd.DataFrame
    as_of: Any


@dataclass
class _Lifetime:
    bgnbd: BGNBD
    gamma_gamma: GammaGamma
    holdout: dict[str, float]
    diagnostics: dict[str, Any]


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
    count_label: str = "purchase_days_in_window",
    exclude: Sequence[str] = (),
    propensity_model: str = "auto",
    discount_rate: float = 0.01,
    currency: str = "",
    sequences: str | None = None,
    sequence_params: dict[str, Any] | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """Train, score every customer at ``as_of`` and publish (see the module docstring; with
    ``sequences`` the churn model also takes embeddings, off by default)."""
    wh = Warehouse.open(wh)
    split_name(output_table or tables.SCORES)  # a bad name fails before any work
    sources, events = (training_table, scoring_table, id_column), (sequences, sequence_params)
    columns, summary, training, embeddings = _read_inputs(wh, sources, events, random_state)
    labels = dict(churn=churn_label, purchase=purchase_label, spend=spend_label, count=count_label)
    skipped: dict[str, str] = {}
    inputs = (training, list(columns), training_table, labels, {id_column, *exclude})
    propensity = _attempt(
        "propensity", skipped, lambda: _fit_propensity(*inputs, propensity_model, random_state)
    )
    fit_clv = partial(_fit_lifetime, summary, scoring_table, training, horizon_days, labels)
    lifetime = _attempt("clv", skipped, fit_clv)
    if propensity is None and lifetime is None:
        raise InputError("; ".join(f"{part}: {reason}" for part, reason in skipped.items()))
    embeddings = _used(embeddings, propensity)
    entries = _entries(propensity, lifetime, horizon_days, training_table, embeddings)
    versions = {name: entry.version for name, entry in entries.items()}
    notes = _diagnostics(lifetime, embeddings is not None)
    bundle = _bundle(horizon_days, versions, skipped, notes)
    stamps = (observation_date(wh, scoring_table), bundle.version, discount_rate, currency)
    scores = _score_stream(wh, scoring_table, id_column, (propensity, lifetime, embeddings), stamps)
    functions, dropped = _functions(propensity, lifetime, discount_rate, embeddings is None)
    written = {output_table: scores} if output_table is not None else None
    counts = publish(
        wh, models=[*entries.values(), bundle], tables=written, functions=functions, drop=dropped
    )
    return {
        "rows": counts.get(output_table, len(summary)),
        **{"output_table": output_table, "horizon_days": horizon_days},
        **{"model_version": bundle.version, "versions": versions},
        "metrics": _metric_rows(propensity, lifetime, versions),
        **{"skipped": skipped, "diagnostics": notes},
        **_clv_summary(lifetime),
        "macros": {f.name: f.params for f in functions},
        "features": [] if propensity is None else propensity.features,
    }


def _used(embeddings: _Embeddings | None, propensity: _Propensity | None):
    """The embeddings, or None when the churn model was skipped or kept none of them."""
    if propensity is None or not embedding_columns(propensity.features):
        return None
    return embeddings


def _read_inputs(wh: Warehouse, sources: tuple[str, str, str], sequences: tuple, seed: int):
    """(scoring columns, the lifetimes summary, the training sample, the churn model's
    embeddings); with an events table (``sequences``: table, params) the training sample has
    the embedding columns too, and so have the scoring columns."""
    training_table, scoring_table, id_column = sources
    columns = _scoring_columns(wh, scoring_table, id_column)
    present = [c for c in LIFETIMES_COLUMNS if c in columns]
    summary = wh.read(scoring_table, [id_column, *present]).to_pandas()  # small: CLV fits on it
    training = _training_sample(wh, training_table, id_column, seed)
    if sequences[0] is None or training is None:
        return columns, summary, training, None
    embeddings = _embeddings(wh, sequences, (training_table, scoring_table), seed)
    cutoff = embeddings.embedder.fitted_until
    extra = embeddings.embedder.at(embeddings.events, cutoff, training[id_column], id_column)
    training = training.merge(extra, on=id_column, how="left")
    columns = {**columns, **dict.fromkeys(embedding_columns(extra.columns), "DOUBLE")}
    return columns, summary, training, embeddings


def _embeddings(
    wh: Warehouse, sequences: tuple, feature_tables: tuple[str, str], seed: int
) -> _Embeddings:
    """A sequence model fitted on the events table's events up to the training set's
    as_of_date (the cutoff: nothing of the label window), and every event for scoring up to
    as_of; ``sequences``: (table, sequence model settings)."""
    table, params = sequences
    training_table, scoring_table = feature_tables
    cutoff = feature_date(wh, training_table, "features")
    as_of = feature_date(wh, scoring_table, "features")
    events = read_history(wh, table)
    return _Embeddings(fit_embedder(events, cutoff, table, params, seed), events, as_of)


def _scoring_columns(wh: Warehouse, table: str, id_column: str) -> dict[str, str]:
    """The scoring table's columns; its ids must be unique and not null (checked in SQL)."""
    columns = wh.require(table, [id_column])
    key = quote(id_column)
    n, dupes, nulls = (
        wh.query(
            f"select count(*), count({key}) - count(distinct {key}), count(*) - count({key}) "
            f"from {qualified(table)}"
        )
        .to_pylist()[0]
        .values()
    )
    if n == 0:
        raise InputError(f"table {table} is empty (0 rows)")
    if dupes or nulls:
        raise InputError(
            f"table {table} ({n} rows): key ({id_column}) has {nulls} null and {dupes} "
            "duplicated row(s); nothing was written"
        )
    return columns


def _training_sample(wh: Warehouse, table: str, id_column: str, seed: int) -> pd.DataFrame | None:
    """The training table, or a seeded sample of TRAINING_ROWS rows of a larger one (the
    propensity model trains on a capped sample: its cost stops growing with the table)."""
    if not wh.exists(table):
        return None
    wh.require(table, [id_column])
    return wh.sample(table, TRAINING_ROWS, key=id_column, seed=seed).to_pandas()


def _diagnostics(lifetime: _Lifetime | None, embedded: bool = False) -> list[str]:
    """The lifetime models' assumption checks, in words (empty when all hold), and what the
    churn model's sequence embeddings (``embedded``) change."""
    notes = []
    if embedded:
        notes.append(
            "the churn model takes sequence embeddings, which SQL cannot compute: ml.churn_score "
            "and ml.purchase_score are not persisted; use the stored scores"
        )
    if lifetime is None:
        return notes
    d = lifetime.diagnostics
    if abs(d["frequency_monetary_correlation"]) > GG_MAX_CORRELATION:
        implied = d["population_mean"]
        implied_text = "no finite mean" if implied is None else f"a mean of {implied:,.2f}"
        notes.append(
            "Gamma-Gamma assumes order value does not depend on how often a customer buys; "
            f"among repeat buyers they correlate at r = {d['frequency_monetary_correlation']:.2f} "
            f"(above {GG_MAX_CORRELATION}), so expected order values and CLV are less reliable "
            f"(the model implies {implied_text} per order, {d['observed_mean']:,.2f} observed)"
        )
    if d["one_time_buyer_share"] > 0.5:
        notes.append(
            f"{d['one_time_buyer_share']:.0%} of buyers bought on a single day: BG/NBD gives each "
            "of them P(alive) = 1; their chance of buying again is 1 - churn probability"
        )
    return notes


def _clv_summary(lifetime: _Lifetime | None) -> dict[str, Any]:
    if lifetime is None:
        return {"clv_params": {}, "clv_holdout": {}}
    params = {**lifetime.bgnbd.params_, **lifetime.gamma_gamma.params_}
    return {"clv_params": params, "clv_holdout": lifetime.holdout}


def _bundle(horizon_days: int, versions: dict, skipped: dict, notes: list[str]) -> ModelEntry:
    """The ``customer_scores`` registry entry: which models scored, what was skipped, why."""
    meta = {
        "horizon_days": horizon_days,
        "components": versions,
        "skipped": skipped,
        "diagnostics": notes,
    }
    return ModelEntry(tables.SCORES_MODEL, pack({}, meta), meta)


def _attempt(part: str, skipped: dict[str, str], fit: Callable[[], Any]) -> Any:
    """``fit()``, or None with the reason recorded when the data cannot support this part."""
    try:
        return fit()
    except PyprofileError as exc:
        skipped[part] = " ".join(str(exc).split())
        return None


# ----------------------------------------------------------------------------- propensity
def _fit_propensity(
    training: pd.DataFrame | None,
    scoring_columns: list[str],
    table: str,
    labels: dict[str, str],
    skip: set[str],
    model: str,
    random_state: int,
) -> _Propensity:
    label = labels["churn"]
    if training is None:
        raise InputError(f"table {table} does not exist: build the point-in-time training set")
    if label not in training.columns:
        raise InputError(f"table {table} ({len(training)} rows) has no label column {label}")
    n_null = int(training[label].isna().sum())
    if n_null:
        raise InputError(
            f"table {table}: label column {label} has {n_null} null(s) in {len(training)} rows"
        )
    skip = skip | set(labels.values())
    features = [c for c in training.columns if c in set(scoring_columns) and c not in skip]
    if not features:
        raise InputError(
            f"table {table} shares no feature column with the scoring table besides the id "
            "and the labels"
        )
    try:
        fitted = PropensityModel(model=model, columns=features, random_state=random_state).fit(
            training[features], training[label].astype("float64")
        )
    except InputError as exc:
        raise InputError(f"table {table} ({len(training)} rows), label {label}: {exc}") from exc
    used = [c for c in features if c in set(fitted.feature_names_in_)]
    return _Propensity(fitted, label, used)


# ----------------------------------------------------------------------------- lifetime value
def _summary_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        c: pd.to_numeric(frame[c], errors="coerce").astype("float64").to_numpy()
        for c in LIFETIMES_COLUMNS
    }


def _fit_clv(frame: pd.DataFrame, table: str) -> tuple[BGNBD, GammaGamma, np.ndarray]:
    """Fit both models on customers with a complete lifetimes summary; returns the row mask."""
    missing = [c for c in LIFETIMES_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"table {table} lacks the lifetimes column(s) {', '.join(missing)}")
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


def _fit_lifetime(
    scoring: pd.DataFrame,
    table: str,
    training: pd.DataFrame | None,
    horizon_days: int,
    labels: dict[str, str],
) -> _Lifetime:
    bg, gg, known = _fit_clv(scoring, table)
    holdout = {}
    if training is not None:
        holdout = _attempt_holdout(training, horizon_days, labels)
    return _Lifetime(bg, gg, holdout, _gg_metrics(gg, scoring, known))


def _attempt_holdout(training: pd.DataFrame, horizon_days: int, labels: dict[str, str]) -> dict:
    """Fit BG/NBD + Gamma-Gamma at the cutoff and score them on the labelled window."""
    if any(c not in training.columns for c in LIFETIMES_COLUMNS):
        return {}
    try:
        bg, gg, known = _fit_clv(training, "training table")
    except InputError as exc:
        return {"note": str(exc)}
    cols = {k: v[known] for k, v in _summary_columns(training).items()}
    expected = bg.expected_purchases(
        float(horizon_days), cols["frequency"], cols["recency"], cols["T"]
    )
    out: dict[str, float] = {"n_test": int(known.sum())}
    if labels["purchase"] in training.columns:
        bought = training[labels["purchase"]].to_numpy()[known] > 0
        out["roc_auc"] = roc_auc(bought, expected)
    if labels["spend"] in training.columns:
        value = gg.expected_value(cols["frequency"], np.nan_to_num(cols["monetary_value"]))
        actual = pd.to_numeric(training[labels["spend"]]).fillna(0.0).to_numpy()[known]
        out["spend_mae"] = float(np.mean(np.abs(expected * value - actual)))
        out["spend_mae_baseline"] = float(np.mean(np.abs(actual - actual.mean())))
    if labels["count"] in training.columns:
        actual = pd.to_numeric(training[labels["count"]]).fillna(0.0).to_numpy()[known]
        out["calibration_table"] = holdout_calibration(cols["frequency"], expected, actual)
    return out


def holdout_calibration(
    frequency: np.ndarray, predicted: np.ndarray, actual: np.ndarray, top: int = 6
) -> list[dict[str, Any]]:
    """BG/NBD on the holdout window, per frequency at the cutoff (0, 1, ..., ``top``+): the
    customers, their mean predicted purchases and the mean they made."""
    bucket = np.minimum(frequency, top).astype(int)
    rows = []
    for b in np.unique(bucket):
        mask = bucket == b
        rows.append(
            {
                "frequency": f"{b}+" if b == top else str(b),
                "customers": int(mask.sum()),
                "predicted": float(predicted[mask].mean()),
                "actual": float(actual[mask].mean()),
            }
        )
    return rows


def _gg_metrics(gg: GammaGamma, frame: pd.DataFrame, known: np.ndarray) -> dict[str, float]:
    """Fit diagnostics: the model's mean order value against the observed one.

    With ``q`` close to 1 the Gamma-Gamma population mean ``v p / (q - 1)`` runs far above
    the data's (heavy-tailed or mixed spend); this makes it visible in the registry.
    """
    cols = _summary_columns(frame)
    repeat = known & (cols["frequency"] > 0) & (cols["monetary_value"] > 0)
    p, q, v = (gg.params_[k] for k in ("p", "q", "v"))
    x, m = cols["frequency"][repeat], cols["monetary_value"][repeat]
    corr = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 and np.ptp(m) > 0 else 0.0
    return {
        "n_customers": gg.n_customers_,
        "n_excluded": gg.n_excluded_,
        "population_mean": v * p / (q - 1.0) if q > 1 else None,  # None: infinite
        "observed_mean": float(np.mean(m)),
        "frequency_monetary_correlation": corr,
        "one_time_buyer_share": float(np.mean(cols["frequency"][known] == 0)),
    }


# ----------------------------------------------------------------------------- outputs
def _entries(
    propensity: _Propensity | None,
    lifetime: _Lifetime | None,
    horizon_days: int,
    table: str,
    embeddings: _Embeddings | None,
) -> dict[str, ModelEntry]:
    """The registry entries of the fitted models (the scores bundle refers to them)."""
    out = {}
    if propensity is not None:
        params = {
            "horizon_days": horizon_days,
            "training_table": table,
            "features": propensity.features,
            "label": propensity.label,
        }
        if embeddings is not None:
            out["churn_embedder"] = embeddings.embedder.entry(tables.CHURN_EMBEDDER_MODEL)
            params["embeddings"] = {
                "sequences": embeddings.embedder.table,
                "fitted_until": str(embeddings.embedder.fitted_until),
                "model_version": out["churn_embedder"].version,
            }
        out["churn"] = ModelEntry(
            tables.CHURN_MODEL, propensity.model.to_artifact(), params, propensity.model.metrics_
        )
    if lifetime is not None:
        bg, gg = lifetime.bgnbd, lifetime.gamma_gamma
        bg_metrics = {"log_likelihood": bg.log_likelihood_, **lifetime.holdout}
        out["bgnbd"] = ModelEntry(tables.BGNBD_MODEL, bg.to_artifact(), bg.params_, bg_metrics)
        out["gamma_gamma"] = ModelEntry(
            tables.GAMMA_GAMMA_MODEL, gg.to_artifact(), gg.params_, lifetime.diagnostics
        )
    return out


def _score_stream(
    wh: Warehouse, table: str, id_column: str, models: tuple, stamps: tuple
) -> pa.RecordBatchReader:
    """Every customer's scores, batch by batch (the scoring table is never read whole);
    ``models``: the propensity and lifetime parts and the churn model's embeddings (each
    None when absent), which embed each batch's customers from their events up to as_of."""
    propensity, lifetime, embeddings = models
    as_of, version, discount_rate, currency = stamps
    columns = [id_column]
    if propensity is not None:
        embedded = set(embedding_columns(propensity.features))  # added per batch, not read
        columns += [c for c in propensity.features if c not in embedded]
    if lifetime is not None:
        columns += list(LIFETIMES_COLUMNS)
    columns = list(dict.fromkeys(columns))

    def batches():
        for batch in wh.batches(table, columns, batch_size=SCORING_BATCH):
            frame = batch.to_pandas()
            if embeddings is not None:
                e = embeddings
                extra = e.embedder.at(e.events, e.as_of, frame[id_column], id_column)
                frame = frame.merge(extra, on=id_column, how="left")
            out = _scores(frame, id_column, propensity, lifetime, (discount_rate, currency))
            yield pa.RecordBatch.from_pandas(stamp(out, as_of, version), preserve_index=False)

    first = next(batches_iter := batches())
    return pa.RecordBatchReader.from_batches(
        first.schema, itertools.chain([first], (b.cast(first.schema) for b in batches_iter))
    )


def _scores(
    scoring: pd.DataFrame,
    id_column: str,
    propensity: _Propensity | None,
    lifetime: _Lifetime | None,
    settings: tuple[float, str],
) -> pd.DataFrame:
    """One row per customer of a batch of the scoring table: the columns of
    ``ml.customer_scores`` (null where a part was skipped); ``settings``: the discount rate
    and the currency."""
    discount_rate, currency = settings
    n = len(scoring)
    out = {id_column: scoring[id_column].to_numpy()}
    nulls = np.full(n, np.nan)
    out.update({c: nulls for c in PROPENSITY_COLUMNS})
    out.update({c: np.full(n, None, dtype=object) for c in REASON_COLUMNS})
    if propensity is not None:
        X = scoring[propensity.features]
        churn = propensity.model.predict_proba(X)[:, 1]
        out.update(churn_probability=churn, purchase_probability=1.0 - churn)
        reasons = propensity.model.reason_codes(X)
        out.update(
            {
                c: _in_words(propensity.model, X, reasons[f"reason_{i + 1}"], currency)
                for i, c in enumerate(REASON_COLUMNS)
            }
        )
    out.update({c: nulls for c in CLV_COLUMNS})
    if lifetime is not None:
        out.update(_lifetime_scores(scoring, lifetime, discount_rate))
    return pd.DataFrame(out)


def _in_words(model: PropensityModel, X: pd.DataFrame, codes: pd.Series, currency: str):
    """Reason codes (``days_since_last_visit``, ``region=north``) as sentences with the
    customer's value and the typical customer's: ``no visit for 41 days (typical: 9 days)
    → raises churn risk``. Each distinct (code, value) is put in words once."""
    out = np.full(len(codes), None, dtype=object)
    for code, rows in _groups(codes.to_numpy(dtype=object)):
        column, eq, level = code.partition("=")
        if eq:
            out[rows] = f"{reason(column, None, None, level=level)} → raises churn risk"
            continue
        typical = model.reference_.get(column)
        for value, where in _groups(X[column].to_numpy(dtype=object)[rows], keep_missing=True):
            said = reason(column, value, typical, currency=currency)
            out[rows[where]] = f"{said} → raises churn risk"
    return out


def _groups(values: np.ndarray, keep_missing: bool = False):
    """(value, positions) per distinct value; missing values (None, NaN) left out, or grouped
    as one None with ``keep_missing``."""
    which, distinct = pd.factorize(values, use_na_sentinel=True)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(-1, len(distinct) + 1))
    if keep_missing and bounds[1] > bounds[0]:
        yield None, order[bounds[0] : bounds[1]]
    for j, value in enumerate(distinct):
        yield value, order[bounds[j + 1] : bounds[j + 2]]


def _lifetime_scores(scoring: pd.DataFrame, lifetime: _Lifetime, discount_rate: float) -> dict:
    cols = _summary_columns(scoring)
    f, r, T, m = (cols[c] for c in LIFETIMES_COLUMNS)
    bg, gg = lifetime.bgnbd, lifetime.gamma_gamma
    known = ~(np.isnan(f) | np.isnan(r) | np.isnan(T))  # this batch's rows with a summary
    value = clv(bg, gg, f, r, T, np.nan_to_num(m), months=12, discount_rate=discount_rate)
    return {
        "p_alive": bg.p_alive(f, r, T),
        "expected_purchases_90d": bg.expected_purchases(90.0, f, r, T),
        "expected_avg_order_value": np.where(known, gg.expected_value(f, np.nan_to_num(m)), np.nan),
        "clv_12m": np.where(known, value, np.nan),
    }


def _functions(
    propensity: _Propensity | None,
    lifetime: _Lifetime | None,
    discount_rate: float,
    in_sql: bool = True,
):
    """(scoring functions of the fitted parts, names of the skipped parts' functions);
    ``in_sql=False``: the churn model's inputs are not all SQL-computable (no churn functions)."""
    churn_names = [tables.CHURN_SCORE, tables.PURCHASE_SCORE]
    clv_names = [tables.P_ALIVE, tables.EXPECTED_PURCHASES, tables.EXPECTED_VALUE, tables.CLV_12M]
    functions, dropped = [], []
    if propensity is not None and in_sql:
        functions += propensity_functions(propensity.model)
    else:
        dropped += churn_names
    if lifetime is not None:
        functions += clv_functions(
            lifetime.bgnbd, lifetime.gamma_gamma, discount_rate=discount_rate
        )
    else:
        dropped += clv_names
    return functions, dropped


def _metric_rows(
    propensity: _Propensity | None, lifetime: _Lifetime | None, versions: dict[str, str]
) -> list[dict]:
    rows = []
    if propensity is not None:
        metrics = propensity.model.metrics_
        rows.append(
            {
                "model": "churn",
                "estimator": metrics["model"],
                "calibration": metrics["calibration"],
                **{k: metrics[k] for k in ("roc_auc", "pr_auc", "brier", "brier_uncalibrated")},
                "top_decile_lift": metrics["top_decile_lift"],
                "n_test": metrics["n_test"],
                "version": versions["churn"],
            }
        )
    if lifetime is not None:
        rows.append(
            {
                "model": "clv",
                "estimator": "bgnbd+gamma_gamma",
                "roc_auc": lifetime.holdout.get("roc_auc"),
                "n_test": lifetime.holdout.get("n_test"),
                "version": versions["bgnbd"],
            }
        )
    return rows


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
