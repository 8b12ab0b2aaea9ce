"""Segmentation on a warehouse: features in; segments, personas and scoring functions out.

Reads ``features.customer_features``, fits a :class:`~pyprofile.models.segment.Segmenter`
(ids matched to the previous registered version) and in one transaction registers the model,
writes ``ml.customer_segments`` and ``ml.segment_profiles`` and persists
``ml.segment_of(<feature columns>)`` (one row) and ``ml.segment_table('<table>')`` (bulk).
Called by the CLI (``pyprofile segment``) and the dbt Python model ``run_segmentation``.

With ``sequences`` (a table of every customer's events; off by default, see
:mod:`pyprofile.flows.embedding_features`) the segments are also learned on sequence
embeddings from a sequence model fitted on the events up to the features' as_of (registered as
``segment_sequence_embedder``); the personas still describe the features. SQL cannot compute
the embeddings, so ``ml.segment_of`` / ``ml.segment_table`` are then dropped, not persisted.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import pandas as pd

from pyprofile.errors import InputError, ModelNotFoundError
from pyprofile.flows.embedding_features import (
    Embedder,
    feature_date,
    fit_embedder,
    read_history,
)
from pyprofile.flows.publish import ModelEntry, observation_date, publish, read_frame, stamp
from pyprofile.models.personas import DEMOGRAPHICS, build_profiles
from pyprofile.models.segment import Segmenter
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.functions import segment_functions
from pyprofile.warehouse.registry import load_model

# Segments are learned on behaviour; demographics describe them (personas) instead.
DEFAULT_EXCLUDE = DEMOGRAPHICS


def _previous(
    wh: Warehouse, columns: list[str], wanted: bool = True
) -> tuple[Segmenter | None, str | None]:
    """The latest registered segmenter, if any and if the feature table still has its inputs."""
    if not wanted:
        return None, None
    try:
        record = load_model(wh, tables.SEGMENTER_MODEL)
    except ModelNotFoundError:  # the first run
        return None, None
    try:
        previous = Segmenter.from_artifact(record.artifact)
    except InputError as exc:  # an artifact of an older format: ids cannot be matched to it
        warnings.warn(
            f"previous segmenter {record.version} cannot be read ({exc}): segment ids are not "
            "matched to it",
            UserWarning,
            stacklevel=3,
        )
        return None, None
    missing = [c for c in previous.feature_names_in_ if c not in columns]
    if missing:
        warnings.warn(
            f"previous segmenter {record.version} needs column(s) {', '.join(missing)} that the "
            "feature table lacks: segment ids are not matched to it",
            UserWarning,
            stacklevel=3,
        )
        return None, None
    return previous, record.version


def _read(wh: Warehouse, features: str, id_column: str) -> tuple[pd.DataFrame, list[str]]:
    """The feature table and its date columns; ids must be unique and not null."""
    types = wh.require(features, [id_column])
    frame = read_frame(wh, features)
    n = len(frame)
    dupes = int(frame[id_column].duplicated().sum())
    if dupes or frame[id_column].isna().any():
        raise InputError(
            f"{features} ({n} rows): {id_column} must be unique and not null "
            f"({dupes} duplicated, {int(frame[id_column].isna().sum())} null)"
        )
    dates = [c for c, t in types.items() if t.upper().startswith(("DATE", "TIMESTAMP", "TIME"))]
    return frame, dates


def run_segmentation(
    wh: Any,
    features: str = tables.FEATURES,
    *,
    k: int | None = None,
    k_range: tuple[int, int] = (3, 12),
    id_column: str = "customer_id",
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
    match_previous: bool = True,
    currency: str = "",
    random_state: int = 0,
    device: str = "auto",
    verbose: bool = False,
    sequences: str | None = None,
    sequence_params: dict[str, Any] | None = None,
    **segmenter_params: Any,
) -> dict[str, Any]:
    """Fit segments on ``features`` and write them back; returns a summary dict.

    ``exclude``: feature columns not clustered on (default: demographics, which the personas
    report instead); date columns never are. ``sequences`` (off by default): see the module
    docstring. Other keyword arguments go to :class:`Segmenter`.
    """
    started = time.perf_counter()
    wh = Warehouse.open(wh)
    frame, dates = _read(wh, features, id_column)
    events = (features, id_column, sequences, sequence_params)
    inputs, embedder = _with_embeddings(wh, frame, events, random_state)
    previous, previous_version = _previous(wh, list(inputs.columns), match_previous)
    excluded = tuple(dict.fromkeys([id_column, *exclude, *dates]))
    options = {"random_state": random_state, "device": device, "verbose": verbose}
    segmenter = Segmenter(k, tuple(k_range), exclude=excluded, **options, **segmenter_params)
    segmenter.fit(inputs, previous=previous)
    fit_seconds = time.perf_counter() - started
    params = {**segmenter.get_params(), "features": features}
    params["feature_columns"] = segmenter.feature_names_in_
    entries = _embedder_entries(embedder, params)
    metrics = _metrics(segmenter, inputs, previous, previous_version, fit_seconds)
    entry = ModelEntry(tables.SEGMENTER_MODEL, segmenter.to_artifact(), params, metrics)
    stamps = (entry.version, observation_date(wh, features), currency)
    segments, profiles = _outputs(segmenter, inputs, id_column, stamps, described=frame)
    functions, dropped = _functions(segmenter, embedder is not None)
    written = {tables.SEGMENTS: segments, tables.SEGMENT_PROFILES: profiles}
    models = [*entries, entry]
    counts = publish(wh, models=models, tables=written, functions=functions, drop=dropped)
    return {
        "model_version": entry.version,
        "previous_version": previous_version,
        "n_customers": len(frame),
        "k": segmenter.k_,
        "method": segmenter.method_,
        "segments": profiles.set_index("segment_id")["segment_name"].to_dict(),
        "sizes": segmenter.segment_sizes_,
        "comparison": segmenter.comparison_,
        "baseline_comparison": segmenter.baseline_comparison_,
        "rows": counts[tables.SEGMENTS],
        "tables": counts,
        "macro": functions[0].call() if functions else None,
        "seconds": time.perf_counter() - started,
    }


def _with_embeddings(
    wh: Warehouse, frame: pd.DataFrame, sources: tuple, seed: int
) -> tuple[pd.DataFrame, Embedder | None]:
    """``frame`` with every customer's embedding as of the features' as_of_date, from a
    sequence model fitted on the events up to it, and that model; ``frame`` and None without
    an events table. ``sources``: the features table, the id column, the events table and
    the sequence model's settings."""
    features, id_column, table, params = sources
    if table is None:
        return frame, None
    as_of = feature_date(wh, features, "features")
    events = read_history(wh, table)
    embedder = fit_embedder(events, as_of, table, params, seed)
    extra = embedder.at(events, as_of, frame[id_column], id_column)
    return frame.merge(extra, on=id_column, how="left"), embedder


def _embedder_entries(embedder: Embedder | None, params: dict[str, Any]) -> list[ModelEntry]:
    """The sequence model's registry entry (none without); the segmenter's ``params`` name it."""
    if embedder is None:
        return []
    entry = embedder.entry(tables.SEGMENT_EMBEDDER_MODEL)
    params["embeddings"] = {
        "sequences": embedder.table,
        "fitted_until": str(embedder.fitted_until),
        "model_version": entry.version,
    }
    return [entry]


def _functions(segmenter: Segmenter, embedded: bool) -> tuple[list, list[str]]:
    """(scoring functions to persist, names to drop): none, and the old ones dropped, when the
    segmenter takes embeddings, which SQL cannot compute."""
    if embedded:
        return [], [tables.SEGMENT_OF, tables.SEGMENT_TABLE]
    return segment_functions(segmenter), []


def _metrics(segmenter: Segmenter, frame, previous, previous_version, fit_seconds) -> dict:
    return {
        "n_customers": len(frame),
        "k": segmenter.k_,
        "method": segmenter.method_,
        "comparison": segmenter.comparison_,
        "baseline_comparison": segmenter.baseline_comparison_,
        "selection": segmenter.selection_,
        "scores": segmenter.scores_.to_dict(orient="records"),
        "segment_sizes": segmenter.segment_sizes_,
        "dropped_columns": segmenter.dropped_columns_,
        "drift_from_previous": segmenter.drift_from(previous, frame) if previous else {},
        "previous_version": previous_version,
        "fit_seconds": fit_seconds,
    }


def _outputs(
    segmenter: Segmenter,
    frame: pd.DataFrame,
    id_column: str,
    stamps: tuple,
    described: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``ml.customer_segments`` and ``ml.segment_profiles``; ``stamps``: model
    version, as_of date and the currency the personas write amounts in; ``described``: the
    columns the personas describe (default ``frame``; same rows in the same order)."""
    version, as_of, currency = stamps
    scores = segmenter.score(frame)
    scores.insert(0, id_column, frame[id_column].to_numpy())
    profiles = build_profiles(
        frame if described is None else described,
        scores[[id_column, "segment_id"]],
        id_column=id_column,
        currency=currency,
    )
    names = dict(zip(profiles["segment_id"], profiles["segment_name"], strict=True))
    segments = pd.DataFrame(
        {
            id_column: scores[id_column],
            "segment_id": scores["segment_id"].astype("int64"),
            "segment_name": scores["segment_id"].map(names),
            "distance_to_centroid": scores["distance_to_centroid"],
            "map_x": scores["map_x"],
            "map_y": scores["map_y"],
        }
    )
    return stamp(segments, as_of, version), stamp(profiles, as_of, version)


def format_summary(summary: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The summary as (title, [(metric, value), ...]) tables for the CLI."""
    run = [
        ("model version", summary["model_version"]),
        ("previous version", summary["previous_version"] or "none"),
        ("customers", f"{summary['n_customers']:,}"),
        ("segments (k)", summary["k"]),
        ("kept", summary["method"]),
        ("seconds", f"{summary['seconds']:.1f}"),
        ("macro", _macro_text(summary["macro"])),
    ]
    for method in ("autoencoder", "kmeans"):
        if method in summary["comparison"]:
            c = summary["comparison"][method]
            run.append((f"{method} (k={c['k']})", _criteria_text(c)))
    b = summary.get("baseline_comparison")
    if b:
        run.append(
            (
                f"chosen vs k-means baseline (k={b['baseline']['k']})",
                f"{_criteria_text(b['chosen'])} | baseline {_criteria_text(b['baseline'])}"
                f" | agreement ARI {b['agreement_ari']:.2f} ({b['space']})",
            )
        )
    segments = [
        (f"{sid} {name}", f"{summary['sizes'].get(sid, 0):,}")
        for sid, name in summary["segments"].items()
    ]
    return [("segmentation", run), ("segments (customers)", segments)]


def _macro_text(macro: str | None) -> str:
    if macro is None:
        return "none (the segments take sequence embeddings, which SQL cannot compute)"
    return macro.split("(")[0] + "(...)"


def _criteria_text(c: dict[str, Any]) -> str:
    db = c.get("davies_bouldin")
    stability = c.get("stability")
    return (
        f"silhouette {c['silhouette']:.3f}, "
        f"stability {'n/a' if stability is None else f'{stability:.3f}'}, "
        f"Davies-Bouldin {'n/a' if db is None else f'{db:.3f}'}"
    )
