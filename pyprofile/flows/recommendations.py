"""Recommendations on a warehouse: read interactions, fit, write top-N and similarities.

:func:`run_recommendations` is what the CLI (``pyprofile recommend``) and the dbt Python model
call. It reads customer x product ``interactions`` (``customer_id``, ``product_id``,
``weight_column``, ``time_column``, plus ``seen_column`` when only some interactions, e.g.
purchases, should exclude a product from a customer's recommendations) and, on a seeded sample
of at most ``selection_customers`` customers (50,000), holds out the latest ``test_fraction``
of each one's. A :class:`~pyprofile.models.recommend.Recommender` fitted on the rest (``auto``
picks the model by validation NDCG@10 on an inner time split of that rest) is scored on the
held-out part against popularity; then the chosen model is refitted on everything and, in one
transaction, registered with its metrics while ``ml.recommendations`` and
``ml.product_similarities`` are replaced.

Every customer of ``customers`` (and of the interactions) gets ``k`` rows; customers without
history get their segment's popular products (``segments``: a table with ``customer_id`` and
``segment_column``) or the overall ones. ``products`` (a table with ``product_id``) rejects
unknown product ids. Extra keyword ``params`` go to :class:`Recommender`.

With ``sequences`` (a table of events: ``customer_id``, ``product_id``, ``event_at``,
optionally ``event_type``; the dbt model ``features.customer_event_sequences``) the
``sequence`` method (:class:`~pyprofile.models.sequence.SequenceRecommender`) reads them:
``method="sequence"``, or ``auto`` with ``"sequence"`` among ``candidates``; in the held-out
evaluation and auto's selection it sees only each customer's events before their held-out
part. The sequence model also gives every customer an embedding: ``embeddings_table``
(default ``ml.customer_embeddings``: customer_id, ``embedding_00``... DOUBLE, ``has_events``,
model_version, as_of_date; customers without events get the empty history's embedding) and
its own registry entry ``sequence_recommender``, all in the same transaction. When the
recommender chose ``sequence`` that is the same fitted model; otherwise one is fitted with the
same settings (``sequence_params``). ``embeddings=False`` skips them.

Summary keys: ``rows``, ``customers``, ``cold_start_customers``, ``method``,
``model_version``, ``metrics`` (held-out Recall@k, NDCG@k, coverage of the model and of
overall popularity; neither the test part nor the segments, which are computed from the
whole history, took part in the selection or these metrics), ``validation`` (auto's
inner-split scores per candidate), ``similarities`` (rows written), ``output_table``,
``similarities_table``; with sequences also ``embeddings`` (rows written),
``embeddings_table``, ``sequence_model_version``, or ``skipped`` saying why there are none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.flows.publish import (
    ModelEntry,
    check_unique,
    observation_date,
    publish,
    read_events,
    stamp,
)
from pyprofile.models.ranking import time_split
from pyprofile.models.recommend import (
    AUTO_CANDIDATES,
    ITEM,
    TIME,
    USER,
    WEIGHT,
    Recommender,
    customer_sample,
)
from pyprofile.models.sequence_data import tokens_before
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import split_name

# The bundled pipeline's sequence model: a deliberate exception to the library's defaults
# (like the pipeline's synth_epochs), small enough that `dbt build` stays quick on two cores
# (seconds per fit on the demo); run_recommendations(..., sequence_params=...) trains longer.
PIPELINE_SEQUENCE_PARAMS = {"steps": 200, "dim": 32, "max_length": 20}


def pipeline_inputs(wh: Warehouse | str) -> dict[str, Any]:
    """The bundled dbt project's inputs for :func:`run_recommendations`: interactions, customers,
    and the segments, product catalogue and event sequences when they exist (for the CLI and
    the dbt model); with sequences, the pipeline's small sequence-model budget and the sequence
    model among auto's candidates."""
    with Warehouse.open(wh) as w:
        segments = tables.SEGMENTS if w.exists(tables.SEGMENTS) else None
        products = tables.PRODUCTS if w.exists(tables.PRODUCTS) else None
        sequences = tables.SEQUENCES if w.exists(tables.SEQUENCES) else None
    return {
        "interactions": tables.INTERACTIONS,
        "customers": tables.FEATURES,
        "segments": segments,
        "products": products,
        "sequences": sequences,
        "time_column": "last_interaction_at",
        "seen_column": "is_purchased",
        # with sequences, auto weighs the sequence model too (it must win by sequence_margin)
        **(
            {
                "sequence_params": dict(PIPELINE_SEQUENCE_PARAMS),
                "candidates": [*AUTO_CANDIDATES, "sequence"],
            }
            if sequences
            else {}
        ),
    }


def _read(wh: Warehouse, name: str, columns: list[str]) -> pd.DataFrame:
    return wh.read(name, columns).to_pandas()


def _inputs(wh, interactions, customers, segments, segment_column, products, columns):
    """(interactions, segments, catalogue, every customer to recommend to)."""
    weight_column, time_column, seen_column = columns
    cols = [USER, ITEM, weight_column, time_column] + ([seen_column] if seen_column else [])
    data = _read(wh, interactions, list(dict.fromkeys(cols)))
    data = data.rename(columns={weight_column: WEIGHT, time_column: TIME})
    if data.empty:
        raise InputError(f"table {interactions} has no interactions (0 rows)")
    seg = None
    if segments is not None:
        seg = _read(wh, segments, [USER, segment_column])
        seg = seg.rename(columns={segment_column: "segment"})
    catalogue = None if products is None else _read(wh, products, [ITEM])
    everyone = data[USER].drop_duplicates()
    if customers is not None:
        listed = _read(wh, customers, [USER])[USER].drop_duplicates()
        everyone = pd.concat([listed, everyone]).drop_duplicates()
    return data, seg, catalogue, everyone.dropna().to_numpy()


def _read_sequences(wh: Warehouse, sequences: str | None) -> pd.DataFrame | None:
    """The events of ``sequences`` (see :func:`~pyprofile.flows.publish.read_events`), or None."""
    return None if sequences is None else read_events(wh, sequences)


def run_recommendations(
    wh: Warehouse | str,
    interactions: str = tables.INTERACTIONS,
    *,
    customers: str | None = tables.FEATURES,
    k: int = 10,
    method: str = "auto",
    segments: str | None = None,
    segment_column: str = "segment_id",
    products: str | None = None,
    similar_k: int = 20,
    weight_column: str = WEIGHT,
    time_column: str = TIME,
    seen_column: str | None = None,
    output_table: str = tables.RECOMMENDATIONS,
    similarities_table: str = tables.PRODUCT_SIMILARITIES,
    sequences: str | None = None,
    embeddings: bool = True,
    embeddings_table: str = tables.CUSTOMER_EMBEDDINGS,
    evaluate: bool = True,
    test_fraction: float = 0.2,
    random_state: int = 0,
    **params: Any,
) -> dict[str, Any]:
    """Fit recommendations on ``interactions`` and publish them; returns a summary dict (the
    module docstring says what each setting means and what the summary holds)."""
    wh = Warehouse.open(wh)
    split_name(output_table), split_name(similarities_table), split_name(embeddings_table)
    columns = (weight_column, time_column, seen_column)
    sources = (interactions, customers, segments, segment_column, products)
    data, seg, catalogue, everyone = _inputs(wh, *sources, columns)
    events = _read_sequences(wh, sequences)
    options = {"k": k, "random_state": random_state, "seen_column": seen_column, **params}
    held_out = test_fraction if evaluate else None
    model, chosen_params, metrics, validation = _fit(
        data, seg, catalogue, events, method, options, held_out
    )
    inputs = {"interactions": interactions, "segments": segments, "sequences": sequences}
    settings = {**inputs, **_settings(method, model, chosen_params, options)}
    registered = {**metrics, "validation": validation}
    entry = ModelEntry(tables.RECOMMENDER_MODEL, model.to_artifact(), settings, registered)
    as_of = (observation_date(wh, customers) if customers else None) or data[TIME].max()
    names = (output_table, similarities_table)
    recs, sims = _outputs(model, everyone, k, similar_k, entry.version, as_of, names)
    extra = _embeddings(model, events if embeddings else None, everyone, as_of, sequences)
    _publish(wh, entry, dict(zip(names, (recs, sims), strict=True)), extra, embeddings_table)
    known = set(model.customers_.tolist())
    return {
        **_embedding_summary(extra, embeddings_table),
        "rows": len(recs),
        "customers": len(everyone),
        "cold_start_customers": int(sum(c not in known for c in everyone.tolist())),
        "method": model.method_,
        "model_version": entry.version,
        "metrics": metrics,
        "validation": validation,
        "similarities": len(sims),
        "output_table": output_table,
        "similarities_table": similarities_table,
    }


def _fit(data, seg, catalogue, events, method: str, options: dict, test_fraction):
    """The model fitted on everything, after a held-out evaluation unless ``test_fraction``
    is None: (model, chosen parameters, held-out metrics, auto's validation scores)."""
    chosen, chosen_params, metrics, validation = method, {}, {}, []
    if test_fraction is not None:
        chosen, chosen_params, metrics, validation = _evaluate(
            data, catalogue, events, method, options, test_fraction, options["k"]
        )
    model = Recommender(chosen, **{**options, **chosen_params})
    model.fit(data, segments=seg, products=catalogue, sequences=events)
    return model, chosen_params, metrics, validation or model.validation_


def _publish(wh: Warehouse, entry: ModelEntry, outputs: dict, extra: dict, table: str) -> None:
    """Register the models and replace the tables in one transaction; when the embeddings
    were skipped (events that cannot train a sequence model), an earlier run's embeddings
    table is dropped rather than left stale."""
    entries = [entry] + ([extra["entry"]] if "entry" in extra else [])
    if "frame" in extra:
        check_unique(extra["frame"], [USER], table)
        outputs = {**outputs, table: extra["frame"]}
    stale = [table] if "skipped" in extra else []
    publish(wh, models=entries, tables=outputs, drop_tables=stale)


def _settings(method: str, model: Recommender, chosen_params: dict, options: dict) -> dict:
    """The registry params: the method asked for, the one chosen and the scalar options."""
    return {
        "method": method,
        "selected_method": model.method_,
        "selected_params": chosen_params or model.selected_params_,
        **{key: value for key, value in options.items() if np.isscalar(value)},
    }


def _outputs(model: Recommender, everyone, k: int, similar_k: int, version: str, as_of, names):
    """The rows of the recommendations and product-similarity tables (keys checked)."""
    recs = stamp(model.recommend(everyone, k), as_of, version)
    sims = stamp(model.similar_products(similar_k), as_of, version)
    check_unique(recs, [USER, "rank"], names[0])
    check_unique(sims, [ITEM, "rank"], names[1])
    return recs, sims


def _evaluate(data, catalogue, events, method: str, options: dict, test_fraction: float, k: int):
    """Select (auto) on the earlier interactions only and score on the later ones, on a seeded
    sample of at most ``selection_customers`` customers (the customers auto compares the
    candidates on), so that the evaluation costs the same on any base; the model published is
    then fitted on everyone.

    Returns (method, its parameters, held-out metrics, auto's validation scores). The test
    part stays unseen by the selection; so do the segments, computed from the whole history,
    and each customer's events from their first held-out interaction on.
    """
    probe = Recommender(method, **options)
    data, events = customer_sample(data, events, probe.selection_customers, probe.random_state or 0)
    train, test = time_split(data, test_fraction)
    if test.empty:
        return method, {}, {"note": "too little history per customer for a held-out time split"}, []
    earlier = None if events is None else tokens_before(events, test)
    probe.fit(train, products=catalogue, sequences=earlier)
    metrics = _holdout(probe, train, test, catalogue, k)
    return probe.method_, probe.selected_params_, metrics, probe.validation_


def _embeddings(model: Recommender, events, everyone, as_of, table: str | None) -> dict:
    """The sequence model's registry entry and embedding rows ({} without events; a
    ``skipped`` reason when the events cannot train one)."""
    if events is None:
        return {}
    sequence = model.sequence_model_
    if sequence is None:
        sequence = model.sequence_estimator()
        try:
            sequence.fit(events)
        except InputError as exc:
            return {"skipped": {"customer embeddings": f"table {table}: {exc}"}}
    entry = ModelEntry(
        tables.SEQUENCE_MODEL,
        sequence.to_artifact(),
        {"sequences": table, **_scalars(sequence.get_params())},
        {
            "validation_ndcg@10": sequence.validation_ndcg_,
            "best_step": sequence.best_step_,
            "steps_run": sequence.history_[-1]["step"] if sequence.history_ else 0,
            "history": sequence.history_,
        },
    )
    frame = sequence.embed(everyone)
    frame.insert(len(frame.columns), "has_events", frame[USER].isin(sequence.customers_))
    return {"entry": entry, "frame": stamp(frame, as_of, entry.version)}


def _scalars(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is None or np.isscalar(value)}


def _embedding_summary(extra: dict, table: str) -> dict[str, Any]:
    if "frame" in extra:
        return {
            "embeddings": len(extra["frame"]),
            "embeddings_table": table,
            "sequence_model_version": extra["entry"].version,
        }
    return {"skipped": extra["skipped"]} if "skipped" in extra else {}


def _holdout(
    probe: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    catalogue: pd.DataFrame | None,
    k: int,
) -> dict[str, Any]:
    """Held-out metrics of the model fitted on the earlier interactions, and of (overall)
    popularity."""
    out: dict[str, Any] = {"test_interactions": len(test)}
    popularity = Recommender(**{**probe.get_params(), "method": "popularity"})
    for name, fitted in (("model", probe), ("popularity", popularity)):
        try:
            if fitted is popularity:
                fitted.fit(train, products=catalogue)
            scores = fitted.evaluate(test, k)
        except InputError as exc:  # e.g. every held-out product was seen before
            out[f"{name}_note"] = str(exc)
            continue
        out.update({f"{name}_{key}": value for key, value in scores.items()})
    return out
