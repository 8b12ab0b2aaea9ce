"""Sequence embeddings as extra inputs of run_scoring and run_segmentation: point in time, used."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from pyprofile.errors import InputError
from pyprofile.flows.scoring import run_scoring
from pyprofile.flows.segmentation import run_segmentation
from pyprofile.warehouse import Warehouse, registry

CUTOFF = pd.Timestamp("2024-06-30")
AS_OF = pd.Timestamp("2024-09-28")
EVENTS = "staging.events"
SEQ = {
    "steps": 20,
    "dim": 16,
    "heads": 2,
    "max_length": 10,
    "eval_every": 10,
    "validation_size": 50,
}
SEG = {"k": 2, "epochs": 5, "cluster_epochs": 2, "n_init": 1, "stability_refits": 2}


def histories(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Events before the cutoff; whether a customer churns is set by the product of their latest
    event (``leave`` or ``stay``), which no tabular feature shows."""
    rng = np.random.default_rng(seed)
    churned = rng.random(n) < 0.5
    rows = []
    for c in range(n):
        days = np.sort(rng.choice(np.arange(10, 150), 5, replace=False))
        for d in days[:-1]:
            rows.append((c, f"p{rng.integers(8)}", CUTOFF - pd.Timedelta(days=int(d)), "view"))
        last = "leave" if churned[c] else "stay"
        rows.append((c, last, CUTOFF - pd.Timedelta(days=int(days[-1] % 5)), "purchase"))
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "event_at", "event_type"])
    return frame, churned


def later(n: int, seed: int, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """One event per customer within ``days`` after ``start`` (a product seen before)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "product_id": rng.choice(["leave", "stay", "p1"], n),
            "event_at": start + pd.to_timedelta(rng.integers(1, days, n), unit="D"),
            "event_type": "view",
        }
    )


def warehouse(events: pd.DataFrame, churned: np.ndarray) -> Warehouse:
    """Noise features at the cutoff (training, with the labels) and at as_of; the events."""
    n = len(churned)
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"customer_id": np.arange(n), "noise": rng.normal(size=n)})
    training = base.assign(
        as_of_date=CUTOFF.date(), churned=churned, purchased=~churned, tenure_days=100.0
    )
    scoring = base.assign(as_of_date=AS_OF.date(), tenure_days=190.0)
    wh = Warehouse.open(":memory:")
    wh.write_many(
        {
            "features.customer_training": training,
            "features.customer_features": scoring,
            EVENTS: events,
        }
    )
    return wh


@pytest.fixture(scope="module")
def data():
    return histories(300, seed=3)


def churn_run(events: pd.DataFrame, churned: np.ndarray):
    """(warehouse, summary, scores by customer) of run_scoring with the embeddings."""
    wh = warehouse(events, churned)
    summary = run_scoring(
        wh, horizon_days=90, sequences=EVENTS, sequence_params=SEQ, propensity_model="linear"
    )
    scores = wh.read("ml.customer_scores").to_pandas().sort_values("customer_id")
    return wh, summary, scores.reset_index(drop=True)


def test_churn_model_learns_from_the_embeddings(data):
    events, churned = data
    plain = run_scoring(warehouse(events, churned), horizon_days=90, propensity_model="linear")
    assert plain["metrics"][0]["roc_auc"] < 0.7  # the tabular features are noise
    wh, summary, scores = churn_run(events, churned)
    assert summary["metrics"][0]["roc_auc"] > 0.9
    assert any(f.startswith("embedding_") for f in summary["features"])
    assert scores["churn_probability"].notna().all() and len(scores) == len(churned)
    said = scores["churn_reason_1"].dropna()
    assert said.str.startswith("recent-events pattern ").any()  # embeddings in plain words
    assert not said.str.contains("embedding_").any()
    # SQL cannot compute the embeddings: no churn function is persisted, the notes say why
    assert "ml.churn_score" not in summary["macros"]
    assert any("sequence embeddings" in note for note in summary["diagnostics"])
    record = registry.load_model(wh, "churn")
    assert record.params["embeddings"]["fitted_until"] == str(CUTOFF.date())
    embedder = registry.load_model(wh, "churn_sequence_embedder")
    assert record.params["embeddings"]["model_version"] == embedder.version


def test_churn_training_sees_nothing_after_the_cutoff(data):
    """Other events in the label window leave the sequence model and the churn model exactly
    as they were (same content versions) but change the scores at as_of; events after as_of
    change nothing."""
    events, churned = data
    n = len(churned)
    window_a = pd.concat([events, later(n, 1, CUTOFF, 85)], ignore_index=True)
    window_b = pd.concat([events, later(n, 2, CUTOFF, 85)], ignore_index=True)
    _, a, scores_a = churn_run(window_a, churned)
    _, b, scores_b = churn_run(window_b, churned)
    assert a["versions"] == b["versions"]
    assert a["metrics"] == b["metrics"]
    changed = ~np.isclose(scores_a["churn_probability"], scores_b["churn_probability"])
    assert changed.sum() > n // 4  # the scores at as_of do read the window's events
    future = pd.concat([window_a, later(n, 3, AS_OF, 30)], ignore_index=True)
    _, c, scores_c = churn_run(future, churned)
    assert c["versions"] == a["versions"]
    pd.testing.assert_frame_equal(scores_c, scores_a)


def test_histories_must_be_whole_and_features_dated(data):
    events, churned = data
    truncated = events.assign(event_count=10)  # every customer has 5 rows here
    wh = warehouse(truncated, churned)
    with pytest.raises(InputError, match="keeps only the latest events of 300 customer"):
        run_scoring(wh, horizon_days=90, sequences=EVENTS, sequence_params=SEQ)
    wh = warehouse(events, churned)
    wh.write(
        "features.customer_features", wh.read("features.customer_features").drop(["as_of_date"])
    )
    with pytest.raises(InputError, match="features.customer_features has no as_of_date"):
        run_scoring(wh, horizon_days=90, sequences=EVENTS, sequence_params=SEQ)


def groups(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two kinds of customer that differ only in the products they look at."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 2
    rows = [
        (c, f"{'ab'[kind[c]]}{rng.integers(4)}", AS_OF - pd.Timedelta(days=int(d)), "view")
        for c in range(n)
        for d in np.sort(rng.choice(np.arange(1, 200), 6, replace=False))[::-1]
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "event_at", "event_type"])
    return frame, kind


def segment_run(events: pd.DataFrame, sequences: str | None):
    n = events["customer_id"].nunique()
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "as_of_date": AS_OF.date(),
            "noise": rng.normal(size=n),
            "other_noise": rng.normal(size=n),
        }
    )
    wh = Warehouse.open(":memory:")
    wh.write_many({"features.customer_features": features, EVENTS: events})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_segmentation(wh, **SEG)  # a plain run first: its SQL functions get dropped below
        summary = run_segmentation(
            wh, sequences=sequences, sequence_params=SEQ, match_previous=False, **SEG
        )
    segments = wh.read("ml.customer_segments").to_pandas().sort_values("customer_id")
    return wh, summary, segments["segment_id"].to_numpy()


def test_segments_learn_from_the_embeddings_up_to_as_of():
    events, kind = groups(200, seed=5)
    _, plain, plain_ids = segment_run(events, None)
    wh, summary, ids = segment_run(events, EVENTS)
    assert adjusted_rand_score(kind, plain_ids) < 0.2  # the features are noise
    assert adjusted_rand_score(kind, ids) > 0.8
    record = registry.load_model(wh, "segmenter")
    assert any(c.startswith("embedding_") for c in record.params["feature_columns"])
    assert record.params["embeddings"]["fitted_until"] == str(AS_OF.date())
    assert summary["macro"] is None and plain["macro"] is not None
    assert not wh.query(
        "select * from duckdb_functions() where function_name in ('segment_of', 'segment_table')"
    ).num_rows
    profiles = wh.read("ml.segment_profiles").to_pandas()
    assert "embedding_" not in " ".join(profiles.astype(str).to_numpy().ravel())
    # events after as_of change nothing
    future = pd.concat([events, later(200, 4, AS_OF, 30)], ignore_index=True)
    _, again, again_ids = segment_run(future, EVENTS)
    assert again["model_version"] == summary["model_version"]
    np.testing.assert_array_equal(again_ids, ids)
