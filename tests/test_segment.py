"""Segmenter: recovery, model selection in one space, stability, determinism, stable ids,
SQL macro = Python, bad input, the flow."""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from pyprofile.errors import InputError, NotFittedError
from pyprofile.models.clustering import (
    choose,
    finalists,
    pairwise_distances,
    silhouette,
    stability,
)
from pyprofile.models.preprocessing import apply_preprocessing
from pyprofile.models.segment import Segmenter
from pyprofile.warehouse import Warehouse, quote
from pyprofile.warehouse.functions import (
    publish_functions,
    read_sql_function,
    register,
    segment_functions,
)
from pyprofile.warehouse.scoring_sql import segment_of_sql

FAST = {
    "epochs": 20,
    "cluster_epochs": 10,
    "n_init": 2,
    "batch_size": 128,
    "stability_refits": 3,
    "selection_epochs": 5,
}
CENTERS = np.array(
    [[2.5, 2.0, -2.0, 2.0], [-2.5, 2.0, 2.0, -2.0], [2.5, -2.0, 2.0, 2.0], [-2.5, -2.0, -2.0, -2.0]]
)


def customers(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Four well-separated customer types with heavy-tailed money, counts, nulls and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CENTERS), n)
    x = CENTERS[y] + rng.normal(0, 0.5, (n, 4))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "monetary_amount": np.exp(3 + x[:, 0]),
            "order_count": np.round(np.exp(1.5 + x[:, 1] / 2)).astype("int64"),
            "recency_days": 60 * (x[:, 2] + 5),
            "discount_share": 1 / (1 + np.exp(-x[:, 3])),
            "region": rng.choice(["north", "south"], n),
            "constant": 1.0,
            "signup_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        }
    )
    frame.loc[rng.random(n) < 0.05, "recency_days"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = None
    return frame, y


@pytest.fixture(scope="module")
def data():
    return customers()


@pytest.fixture(scope="module")
def fitted(data):
    frame, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Segmenter(k_range=(3, 5), random_state=0, **FAST).fit(frame)


@pytest.fixture(scope="module")
def spied(data):
    """The autoencoder at k=4 (with plain k-means refitted next to it as its baseline), and every
    matrix the selection criteria were computed on while fitting it."""
    import pyprofile.models.segment as segment

    frame, _ = data
    seen: list[np.ndarray] = []
    real_criteria, real_distances = segment.criteria, segment.pairwise_distances
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            segment, "criteria", lambda x, d, lab: seen.append(x) or real_criteria(x, d, lab)
        )
        mp.setattr(segment, "pairwise_distances", lambda x: seen.append(x) or real_distances(x))
        model = _fit(frame, k=4, method="autoencoder")
    return model, seen


@pytest.fixture(scope="module")
def autoencoder_model(spied):
    return spied[0]


@pytest.fixture(scope="module")
def kmeans_model(data):
    return _fit(data[0], k=4, method="kmeans")


def _fit(frame, previous=None, previous_centroids=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Segmenter(**{"random_state": 0, **FAST, **params}).fit(
            frame, previous=previous, previous_centroids=previous_centroids
        )


def test_recovers_known_types_and_reports_all_criteria(data, fitted):
    frame, y = data
    assert fitted.k_ == 4
    assert adjusted_rand_score(y, fitted.predict(frame)) > 0.95
    assert set(fitted.scores_["method"]) == {"autoencoder", "kmeans"}
    assert {"silhouette", "davies_bouldin", "calinski_harabasz", "stability"} <= set(
        fitted.scores_.columns
    )
    assert set(fitted.scores_["space"]) == {"preprocessed features"}
    assert len(fitted.scores_) == 2 * 3  # both representations, k = 3, 4, 5
    assert fitted.scores_["chosen"].sum() == 1
    chosen = fitted.scores_[fitted.scores_["chosen"]].iloc[0]
    assert (chosen["method"], chosen["k"]) == (fitted.method_, fitted.k_)
    assert fitted.comparison_["kept"] == fitted.method_
    assert set(fitted.comparison_) == {"autoencoder", "kmeans", "kept"}
    assert fitted.selection_["k"] == fitted.k_ and fitted.selection_["refits"] == 3
    comparison = fitted.baseline_comparison_
    assert comparison["baseline"]["method"] == "kmeans"
    assert comparison["chosen"]["k"] == comparison["baseline"]["k"] == fitted.k_
    if fitted.method_ == "kmeans":  # the chosen model is the baseline itself
        assert comparison["agreement_ari"] == 1.0
        assert comparison["chosen"] == comparison["baseline"]
        assert fitted.history_ == [] and fitted.encoder_layers_ == []


def test_autoencoder_training_is_recorded(data, autoencoder_model):
    frame, y = data
    model = autoencoder_model
    assert model.method_ == "autoencoder" and len(model.encoder_layers_) == 2
    assert [h["epoch"] for h in model.history_][:3] == [1, 2, 3]
    assert {h["phase"] for h in model.history_} == {"pretrain", "cluster k=4"}
    assert all(np.isfinite(h["loss"]) for h in model.history_)
    assert adjusted_rand_score(y, model.predict(frame)) > 0.95


def test_preprocessing_choices_are_documented_and_visible(data, fitted):
    frame, _ = data
    spec = {item["column"]: item for item in fitted.preprocessing_}
    assert fitted.dropped_columns_ == {
        "customer_id": "identifier",
        "constant": "constant",
        "signup_date": "date/time column",
    }
    assert spec["monetary_amount"]["log"] and spec["order_count"]["log"]
    assert not spec["discount_share"]["log"]
    assert spec["recency_days"]["indicator"]
    assert spec["recency_days"]["fill"] == pytest.approx(frame["recency_days"].median())
    assert spec["region"] == {
        "column": "region",
        "kind": "categorical",
        "levels": ["north", "south"],
        "null_level": True,
    }
    # Independent reference for one numeric column: log, robust scale, clip.
    x = np.log1p(frame["monetary_amount"].to_numpy())
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    expected = np.clip((x - med) / ((q3 - q1) / 1.349), -5, 5)
    z = apply_preprocessing(frame, fitted.preprocessing_)
    col = fitted.feature_names_out_.index("monetary_amount")
    np.testing.assert_allclose(z[:, col], expected, rtol=1e-12, atol=1e-12)


def test_constant_column_warns(data):
    frame, _ = data
    with pytest.warns(UserWarning, match="column constant dropped \\(constant\\)"):
        Segmenter(k=4, method="kmeans", n_init=1).fit(frame)


def test_same_seed_same_model(data, fitted):
    frame, _ = data
    again = _fit(frame, k_range=(3, 5))
    np.testing.assert_array_equal(again.predict(frame), fitted.predict(frame))
    np.testing.assert_array_equal(again.cluster_centers_, fitted.cluster_centers_)
    assert segment_of_sql(again) == segment_of_sql(fitted)


@pytest.fixture(scope="module")
def retrained(data, fitted):
    """Refitted at k=4 on the shuffled rows, another seed, ids matched to ``fitted``."""
    shuffled = data[0].sample(frac=1.0, random_state=7).reset_index(drop=True)
    return _fit(shuffled, k=4, random_state=3, previous=fitted)


def test_ids_stable_across_retrain_on_shuffled_rows(data, fitted, retrained):
    frame, _ = data
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    before = fitted.predict(frame)
    assert (retrained.predict(frame) == before).mean() > 0.97
    by_centroids = _fit(shuffled, k=4, random_state=5, previous_centroids=fitted.profile_centers_)
    assert (by_centroids.predict(frame) == before).mean() > 0.97
    # One more segment: the old ids stay, the new segment takes the next free id.
    finer = _fit(shuffled, k=5, random_state=3, previous=fitted)
    after = finer.predict(frame)
    assert sorted(finer.segment_ids_.tolist()) == [0, 1, 2, 3, 4]
    kept = after != 4
    assert (after[kept] == before[kept]).mean() > 0.97
    # The new segment is (almost) all taken from one old segment.
    assert pd.Series(before[~kept]).value_counts(normalize=True).iloc[0] > 0.9


def test_drift_from_previous(data, fitted, retrained):
    frame, _ = data
    assert fitted.drift_from(fitted, frame) == {int(s): 0.0 for s in fitted.segment_ids_}
    drift = retrained.drift_from(fitted, frame)
    assert sorted(drift) == sorted(retrained.segment_ids_.tolist())
    z = apply_preprocessing(frame, retrained.preprocessing_)
    new, old = retrained.predict(frame), fitted.predict(frame)
    for sid, moved in drift.items():
        by_hand = np.sqrt(((z[new == sid].mean(0) - z[old == sid].mean(0)) ** 2).sum())
        assert moved == pytest.approx(by_hand, rel=1e-12)
    assert max(drift.values()) < 0.5  # the same planted segments, matched to the same ids


def test_score_matches_independent_reference(data, fitted):
    frame, _ = data
    scores = fitted.score(frame)
    space = fitted.transform(frame)
    dist = cdist(space, fitted.cluster_centers_)
    np.testing.assert_allclose(scores["distance_to_centroid"], dist.min(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(scores["segment_id"], fitted.segment_ids_[dist.argmin(axis=1)])
    assert scores[["map_x", "map_y"]].notna().all().all()


# --------------------------------------------------------------------------- model selection
def shop(n: int, shares: tuple[float, ...], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small shop with planted groups and customer_features columns: 0 sign-ups without a
    purchase, 1 one-order guests (signed up at their order), 2 regular buyers, 3 big spenders
    (a few large, full-price orders)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(len(shares), n, p=np.array(shares) / sum(shares))
    tenure = rng.integers(1, 720, n)
    orders = np.select(
        [group == 0, group == 1, group == 2], [0, 1, 3 + rng.poisson(8, n)], 2 + rng.poisson(2, n)
    )
    amount = np.exp(np.where(group == 3, rng.normal(6.0, 0.4, n), rng.normal(3.8, 0.6, n)))
    bought = orders > 0
    recency = np.where(group == 1, tenure, np.minimum(tenure, rng.integers(0, 90, n)))
    discount = np.where(group == 3, rng.beta(1, 30, n), rng.beta(2, 10, n))
    frame = pd.DataFrame(
        {
            "customer_id": [f"S{i:05d}" for i in range(n)],
            "recency_days": np.where(bought, recency, np.nan),
            "order_count": orders,
            "monetary_amount": orders * amount,
            "avg_order_amount": np.where(bought, amount, np.nan),
            "tenure_days": tenure,
            "frequency": np.where(bought, orders - 1, np.nan),
            "discount_share": np.where(bought, discount, np.nan),
            "has_purchased": bought,
        }
    )
    return frame, group


def test_candidates_are_scored_in_the_preprocessed_space_not_their_own(data, spied, kmeans_model):
    frame, _ = data
    ae, seen = spied
    km = kmeans_model
    # 600 rows <= selection_rows: the selection sample is every (preprocessed) training row
    z = apply_preprocessing(frame, ae.preprocessing_)
    assert set(ae.scores_["method"]) == {"autoencoder", "kmeans"}  # the baseline's refits too
    assert len(seen) == 1 + 2 * 3 + 2  # distances; 2 representations x 3 refits; 2 final
    for x in seen:
        np.testing.assert_array_equal(x, z)  # never an embedding (4 columns)
    labels = ae.predict(frame)
    in_features = silhouette_score(z, labels)
    in_embedding = silhouette_score(ae.transform(frame), labels)
    recorded = ae.baseline_comparison_["chosen"]["silhouette"]
    assert recorded == pytest.approx(in_features, rel=1e-9)
    assert in_embedding - recorded > 0.05  # its own space would flatter it
    # The autoencoder's baseline is plain k-means at the same k, scored in the same space.
    assert ae.baseline_comparison_["baseline"] == km.baseline_comparison_["chosen"]
    assert km.baseline_comparison_["chosen"]["silhouette"] == pytest.approx(
        silhouette_score(z, km.predict(frame)), rel=1e-9
    )


def test_stability_is_the_mean_ari_between_bootstrap_refits():
    # The helper: mean pairwise ARI and its jackknife standard error, by hand.
    parts = [
        np.array([0, 0, 1, 1, 2, 2]),
        np.array([0, 0, 1, 1, 1, 2]),
        np.array([1, 1, 0, 0, 2, 2]),
    ]
    ari = {p: adjusted_rand_score(parts[p[0]], parts[p[1]]) for p in [(0, 1), (0, 2), (1, 2)]}
    loo = np.array([ari[(1, 2)], ari[(0, 2)], ari[(0, 1)]])  # leave partition 0, 1, 2 out
    mean, se = stability(parts)
    assert mean == pytest.approx(np.mean(list(ari.values())), abs=1e-15)
    assert se == pytest.approx(np.sqrt(2 / 3 * ((loo - loo.mean()) ** 2).sum()), abs=1e-15)
    assert stability(parts[:2]) == (pytest.approx(ari[(0, 1)]), 0.0)
    # In the estimator: refits on bootstrap samples (seeded as documented), each partitioning
    # every sample row by its nearest center, compared pairwise.
    frame, _ = customers(60, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Segmenter(k=3, method="kmeans", stability_refits=4, n_init=2, random_state=5)
        model.fit(frame)
    z = apply_preprocessing(frame, model.preprocessing_)
    rng = np.random.default_rng(5)
    refits = []
    for _ in range(4):
        boot = rng.choice(len(z), len(z), replace=True)
        km = KMeans(3, n_init=2, random_state=int(rng.integers(2**31 - 1))).fit(z[boot])
        refits.append(cdist(z, km.cluster_centers_).argmin(axis=1))
    pairs = [adjusted_rand_score(a, b) for i, a in enumerate(refits) for b in refits[i + 1 :]]
    row = model.scores_.set_index(["method", "k"]).loc[("kmeans", 3)]
    assert row["stability"] == pytest.approx(np.mean(pairs), abs=1e-12)
    assert row["silhouette"] == pytest.approx(
        np.mean([silhouette_score(z, r) for r in refits]), abs=1e-12
    )


def test_large_tables_learn_kmeans_centers_on_a_sample(monkeypatch):
    """Above KMEANS_ROWS, k-means learns its centers on a seeded sample and labels every row
    by its nearest center: on overlapping blobs as good as full k-means (within 1 % of its
    inertia, the same partition up to border rows)."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    from pyprofile.models import clustering

    x, truth = make_blobs(6000, n_features=5, centers=5, cluster_std=2.5, random_state=2)
    full_centers, full_labels = clustering.kmeans(x, 5, n_init=3, seed=0)
    monkeypatch.setattr(clustering, "KMEANS_ROWS", 1000)
    centers, labels = clustering.kmeans(x, 5, n_init=3, seed=0)
    np.testing.assert_array_equal(labels, clustering.nearest(x, centers))
    # the centers are k-means' on the seeded sample of 1,000 rows
    rows = np.sort(np.random.default_rng(0).choice(6000, 1000, replace=False))
    expected = KMeans(n_clusters=5, n_init=3, random_state=0).fit(x[rows]).cluster_centers_
    np.testing.assert_allclose(centers, expected)
    assert adjusted_rand_score(labels, full_labels) > 0.9  # overlapping: border rows differ

    def inertia(c, lab):
        return ((x - c[lab]) ** 2).sum()

    assert inertia(centers, labels) <= 1.01 * inertia(full_centers, full_labels)


def test_silhouette_and_selection_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    labels = np.r_[np.zeros(19, int), np.ones(20, int), [2]]  # with a one-row cluster
    assert silhouette(pairwise_distances(x), labels) == pytest.approx(
        silhouette_score(x, labels), abs=1e-12
    )
    rows = [
        {"method": "kmeans", "k": 3, "stability": 0.99, "silhouette": 0.30},
        {"method": "kmeans", "k": 6, "stability": 0.97, "silhouette": 0.35},
        {"method": "autoencoder", "k": 6, "stability": 0.98, "silhouette": 0.34},  # less separated
        {"method": "kmeans", "k": 5, "stability": 0.70, "silhouette": 0.40},
        {"method": "autoencoder", "k": 5, "stability": 0.96, "silhouette": 0.41},  # dominates
        {"method": "autoencoder", "k": 4, "stability": 0.99, "silhouette": 0.50},  # less stable:
        {"method": "kmeans", "k": 4, "stability": 0.995, "silhouette": 0.38},  # ... not a finalist
    ]
    assert finalists(rows) == [rows[0], rows[1], rows[4], rows[6]]
    assert choose(rows, 0.05) is rows[4]
    assert choose(rows, 0.02) is rows[6]  # only k-means 3 and 4 count as stable
    assert choose(rows, 0.001) is rows[6]
    assert choose([rows[0], {**rows[0], "k": 4}], 0.05) is rows[0]  # a tie: fewer segments


def test_chosen_model_recovers_planted_groups_at_least_as_well_as_the_baseline():
    frame, group = shop(800, (0.15, 0.40, 0.30, 0.15), seed=1)
    model = _fit(frame, k_range=(3, 6))
    baseline = _fit(frame, k=model.k_, method="kmeans")
    # the recorded baseline is exactly this k-means model, scored the same way
    assert baseline.baseline_comparison_["chosen"] == model.baseline_comparison_["baseline"]
    ours, theirs = (adjusted_rand_score(group, m.predict(frame)) for m in (model, baseline))
    assert ours >= theirs
    assert model.k_ == 4 and ours > 0.9


def test_one_order_guests_and_non_buyers_are_not_split_by_noise():
    frame, group = shop(700, (0.15, 0.75, 0.10), seed=2)
    model = _fit(frame, k_range=(2, 6))
    assert model.k_ == 3
    assert adjusted_rand_score(group, model.predict(frame)) > 0.95


def _scoring_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Training rows plus awkward ones: nulls everywhere, an unseen level, negative money."""
    extra = frame.head(3).copy()
    extra.loc[extra.index[0], ["monetary_amount", "order_count", "recency_days"]] = np.nan
    extra.loc[extra.index[1], "region"] = "atlantis"
    extra.loc[extra.index[2], "monetary_amount"] = -50.0
    return pd.concat([frame, extra], ignore_index=True)


@pytest.mark.parametrize("method", ["autoencoder", "kmeans"])
def test_sql_macro_equals_python_on_every_row(data, method, request):
    frame, _ = data
    model = request.getfixturevalue(f"{method}_model")
    rows = _scoring_rows(frame).astype({"order_count": "Int64"})
    con = duckdb.connect()
    con.register("rows_view", rows)
    con.execute("create table t as select * from rows_view")
    args = ", ".join(quote(c) for c in model.feature_names_in_)
    con.execute(f"create macro segment_of({args}) as {segment_of_sql(model)}")
    sql = con.execute(f"select segment_of({args}) from t").fetchnumpy()
    np.testing.assert_array_equal(next(iter(sql.values())), model.predict(rows))


def test_persisted_macro_and_session_udf(tmp_path, data, fitted):
    frame, _ = data
    path = str(tmp_path / "wh.duckdb")
    with Warehouse.open(path) as wh:
        wh.write("features.f", frame.drop(columns=["signup_date"]))
        call = publish_functions(wh, segment_functions(fitted))[0]
        assert register(wh.con, fitted) == ["py_segment_of"]
        py_call = call.replace("ml.segment_of", "py_segment_of")
        both = wh.query(f"select {call} as m, {py_call} as p from features.f").to_pandas()
        np.testing.assert_array_equal(both["m"], both["p"])
    # A fresh plain DuckDB client sees the macros (persisted), not the Python UDF (session-only).
    con = duckdb.connect(path)
    got = next(iter(con.execute(f"select {call} from features.f").fetchnumpy().values()))
    np.testing.assert_array_equal(got, fitted.predict(frame))
    bulk = con.execute(
        "select * from ml.segment_table('features.f') order by customer_id"
    ).fetchdf()
    assert list(bulk.columns) == [
        *frame.columns.drop("signup_date"),
        "segment_id",
        "distance_to_centroid",
    ]
    expected = (
        fitted.score(frame).assign(customer_id=frame["customer_id"]).sort_values("customer_id")
    )
    np.testing.assert_array_equal(bulk["segment_id"], expected["segment_id"])
    np.testing.assert_array_equal(bulk["distance_to_centroid"], expected["distance_to_centroid"])
    with pytest.raises(duckdb.CatalogException):
        con.execute(f"select {py_call} from features.f")
    con.close()


def test_publish_static_sql_file(tmp_path):
    sql = tmp_path / "double_it.sql"
    sql.write_text("-- macro: main.double_it(x)\n-- doubles x\n2 * x\n")
    wh = Warehouse.open(":memory:")
    function = read_sql_function(sql)
    assert (function.name, function.params) == ("main.double_it", ["x"])
    publish_functions(wh, [function])
    assert wh.scalar("select main.double_it(21)") == 42
    (tmp_path / "bad.sql").write_text("select 1")
    with pytest.raises(InputError, match="header"):
        read_sql_function(tmp_path / "bad.sql")


def test_artifact_round_trip(data, fitted):
    frame, _ = data
    loaded = Segmenter.from_artifact(fitted.to_artifact())
    np.testing.assert_array_equal(loaded.predict(frame), fitted.predict(frame))
    assert segment_of_sql(loaded) == segment_of_sql(fitted)
    pd.testing.assert_frame_equal(loaded.profile_centers_, fitted.profile_centers_)


def test_bad_input_messages(data, fitted):
    frame, _ = data
    with pytest.raises(InputError, match="5 customer\\(s\\): too few for 6 segments"):
        Segmenter(k=6).fit(frame.head(5))
    with pytest.raises(InputError, match="too few for 3 segments"):
        Segmenter().fit(frame.head(2))
    with pytest.raises(InputError, match="no usable feature column"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Segmenter(k=2).fit(frame[["customer_id", "constant"]])
    with pytest.raises(InputError, match="k must be at least 2"):
        Segmenter(k=1).fit(frame)
    with pytest.raises(NotFittedError):
        Segmenter().predict(frame)
    with pytest.raises(InputError, match="lacks column\\(s\\) monetary_amount"):
        fitted.predict(frame.drop(columns=["monetary_amount"]))
    bad = frame.assign(order_count=frame["order_count"].astype(str).where(frame.index > 0, "x"))
    with pytest.raises(InputError, match="order_count .* must be numeric"):
        fitted.predict(bad)


def test_all_null_and_null_heavy_columns(data):
    frame, y = data
    noisy = frame.assign(empty=np.nan)
    model = _fit(noisy, k=4, method="kmeans")
    assert model.dropped_columns_["empty"] == "all null"
    assert adjusted_rand_score(y, model.predict(noisy)) > 0.9


def test_run_segmentation_flow(data):
    from pyprofile.flows.segmentation import format_summary, run_segmentation
    from pyprofile.warehouse.registry import load_model

    frame, y = data
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run_segmentation(wh, k=4, **FAST)
        second = run_segmentation(wh, k=4, random_state=1, **FAST)
    assert first["tables"] == {"ml.customer_segments": 600, "ml.segment_profiles": 4}
    assert first["rows"] == 600
    tables = dict(format_summary(second))
    assert dict(tables["segmentation"])["previous version"] == first["model_version"]
    assert sum(int(v.replace(",", "")) for _, v in tables["segments (customers)"]) == 600
    assert second["previous_version"] == first["model_version"]
    segs = wh.query(
        f"select s.*, {first['macro']} as sql_segment from ml.customer_segments s "
        "join features.customer_features using (customer_id) order by customer_id"
    ).to_pandas()
    assert list(segs.columns[:7]) == [
        "customer_id",
        "segment_id",
        "segment_name",
        "distance_to_centroid",
        "map_x",
        "map_y",
        "model_version",
    ]
    assert (segs["model_version"] == second["model_version"]).all()
    np.testing.assert_array_equal(segs["segment_id"], segs["sql_segment"])
    assert adjusted_rand_score(y, segs["segment_id"]) > 0.95
    # The session-only Python UDF loads the latest registered model by itself.
    register(wh.con, column_types=wh.columns("features.customer_features"))
    py = wh.query(
        f"select {first['macro'].replace('ml.segment_of', 'py_segment_of')} as p "
        "from features.customer_features order by customer_id"
    ).to_pandas()
    np.testing.assert_array_equal(py["p"], segs["segment_id"])
    record = load_model(wh, "segmenter")
    assert record.version == second["model_version"] and record.metrics["k"] == 4
    profiles = wh.read("ml.segment_profiles").to_pandas()
    assert profiles["size"].sum() == 600
    assert set(profiles["segment_name"]) == set(segs["segment_name"])


def test_a_tampered_previous_model_is_an_error_not_ignored(data):
    from pyprofile.errors import CorruptArtifactError
    from pyprofile.flows.segmentation import run_segmentation

    frame, _ = data
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run_segmentation(wh, k=4, **FAST)
    wh.execute("update ml.model_registry set artifact = artifact || '\\x00'::blob")
    with pytest.raises(CorruptArtifactError, match=f"segmenter {first['model_version']}"):
        run_segmentation(wh, k=4, **FAST)
