"""Segmenter: recovery, determinism, stable ids, SQL macro = Python, bad input, the flow."""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from pyprofile.errors import InputError, NotFittedError
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

FAST = {"epochs": 20, "cluster_epochs": 10, "n_init": 2, "batch_size": 128}
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
    assert {"silhouette", "davies_bouldin", "calinski_harabasz"} <= set(fitted.scores_.columns)
    assert fitted.comparison_["kept"] == fitted.method_
    assert set(fitted.comparison_) == {"autoencoder", "kmeans", "kept"}
    assert [h["epoch"] for h in fitted.history_][:3] == [1, 2, 3]
    assert all(np.isfinite(h["loss"]) for h in fitted.history_)


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


def test_ids_stable_across_retrain_on_shuffled_rows(data, fitted):
    frame, _ = data
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    before = fitted.predict(frame)
    retrained = _fit(shuffled, k=4, random_state=3, previous=fitted)
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


def test_drift_from_previous(data, fitted):
    frame, _ = data
    assert fitted.drift_from(fitted, frame) == {int(s): 0.0 for s in fitted.segment_ids_}
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    retrained = _fit(shuffled, k=4, random_state=3, previous=fitted)
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


def _scoring_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Training rows plus awkward ones: nulls everywhere, an unseen level, negative money."""
    extra = frame.head(3).copy()
    extra.loc[extra.index[0], ["monetary_amount", "order_count", "recency_days"]] = np.nan
    extra.loc[extra.index[1], "region"] = "atlantis"
    extra.loc[extra.index[2], "monetary_amount"] = -50.0
    return pd.concat([frame, extra], ignore_index=True)


@pytest.mark.parametrize("method", ["autoencoder", "kmeans"])
def test_sql_macro_equals_python_on_every_row(data, method):
    frame, _ = data
    model = _fit(frame, k=4, method=method)
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
