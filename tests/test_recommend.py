"""Recommender models against independent references, exclusions, cold start, the warehouse flow."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from pyprofile.errors import InputError, NotFittedError
from pyprofile.flows.recommendations import run_recommendations
from pyprofile.models.recommend import Recommender, _als_half
from pyprofile.warehouse import Warehouse, registry

T0 = pd.Timestamp("2024-01-01")


def block_data(seed=0, n_users=40, per_user=6):
    """Two taste groups: even customers use products p0-p9, odd ones p10-p19."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        block = 10 * (u % 2)
        for t, item in enumerate(rng.choice(10, size=per_user, replace=False)):
            weight = float(rng.integers(1, 4))
            rows.append((f"c{u}", f"p{block + item}", weight, T0 + pd.Timedelta(days=u + t)))
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "weight", "timestamp"])


@pytest.fixture(scope="module")
def data():
    return block_data()


def _seen(frame):
    return set(zip(frame.customer_id, frame.product_id, strict=True))


@pytest.mark.parametrize("method", ["popularity", "itemknn", "ease", "als"])
def test_never_recommends_seen_items_and_fills_k(data, method):
    model = Recommender(method, min_support=1, random_state=0).fit(data)
    recs = model.recommend(k=4)
    assert list(recs.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    assert not _seen(recs) & _seen(data)
    assert (recs.groupby("customer_id").size() == 4).all()
    assert recs.customer_id.nunique() == data.customer_id.nunique()
    assert all(r == [1, 2, 3, 4] for r in recs.groupby("customer_id")["rank"].apply(list))
    # Scores never increase with rank.
    assert (recs.groupby("customer_id").score.diff().dropna() <= 1e-12).all()


@pytest.mark.parametrize("method", ["itemknn", "ease", "als"])
def test_personalised_models_recommend_from_the_customers_taste_group(data, method):
    model = Recommender(method, min_support=1, factors=2, iterations=20, random_state=0)
    recs = model.fit(data).recommend(k=4)
    group = recs.customer_id.str[1:].astype(int) % 2
    block = (recs.product_id.str[1:].astype(int) >= 10).astype(int)
    assert (group == block).mean() == 1.0
    if method != "als":
        assert recs.reason.str.startswith("bought together with p").all()
        # The named history product is one the customer had, from the same group.
        named = recs.reason.str.removeprefix("bought together with ")
        assert set(zip(recs.customer_id, named, strict=True)) <= _seen(data)


def test_popularity_matches_pandas(data):
    recs = Recommender("popularity").fit(data).recommend(["c0"], k=3)
    # Weights enter as log2(1 + w) of each customer x product's total.
    pairs = data.groupby(["customer_id", "product_id"]).weight.sum().reset_index()
    totals = np.log2(1 + pairs.weight).groupby(pairs.product_id).sum().rename("weight")
    totals = totals.drop(data[data.customer_id == "c0"].product_id)
    expected = totals.reset_index().sort_values(["weight", "product_id"], ascending=[False, True])
    assert recs.product_id.tolist() == expected.product_id.head(3).tolist()
    assert recs.score.to_numpy() == pytest.approx(
        expected.weight.head(3).to_numpy() / np.log2(1 + pairs.weight).sum()
    )
    assert (recs.reason == "popular overall").all()


def test_itemknn_similarity_is_shrunk_cosine(data):
    model = Recommender("itemknn", neighbors=50, shrinkage=2.0, weighting="raw").fit(data)
    items = model.products_
    x = pd.crosstab(data.customer_id, data.product_id, data.weight, aggfunc="sum").fillna(0.0)
    x = x.reindex(columns=items).to_numpy()
    norms = np.linalg.norm(x, axis=0)
    expected = (x.T @ x) / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(expected, 0.0)
    assert model.similarity_.toarray() == pytest.approx(expected, abs=1e-5)
    # Scores are the (recency-weighted) history times the similarity.
    profile = model.profile_.toarray()
    recs = model.recommend(["c3"], k=2)
    row = list(model.customers_).index("c3")
    scores = profile[row] @ expected
    j = list(items).index(recs.product_id[0])
    assert recs.score[0] == pytest.approx(scores[j], rel=1e-5)


def test_ease_matches_closed_form(data):
    model = Recommender("ease", ease_lambda=0.5, min_support=1, max_items=100, weighting="raw")
    model.fit(data)
    x = pd.crosstab(data.customer_id, data.product_id, data.weight, aggfunc="sum").fillna(0.0)
    x = x.reindex(columns=model.products_).to_numpy()
    lam = 0.5 * np.mean(np.sum(x * x, axis=0))
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    assert model.ease_weights_ == pytest.approx(b, abs=1e-5)
    capped = Recommender("ease", min_support=1, max_items=5).fit(data)
    assert len(capped.ease_items_) == 5


def test_als_conjugate_gradient_reaches_the_exact_solution():
    rng = np.random.default_rng(3)
    conf = sp.random(15, 12, density=0.3, random_state=4, format="csr")
    conf.data = 1.0 + 5.0 * conf.data
    y = rng.normal(size=(12, 4))
    x0 = rng.normal(size=(15, 4))
    got = _als_half(conf, x0, y, reg=0.5, cg_steps=12)
    dense = conf.toarray()
    for u in range(15):
        c = np.where(dense[u] > 0, dense[u], 1.0)
        p = (dense[u] > 0).astype(float)
        a = y.T @ (c[:, None] * y) + 0.5 * np.eye(4)
        assert got[u] == pytest.approx(np.linalg.solve(a, y.T @ (c * p)), abs=1e-6)


def test_cold_start_gets_segment_then_global_popularity(data):
    segments = pd.DataFrame(
        {
            "customer_id": [f"c{u}" for u in range(40)] + ["new_odd"],
            "segment": ["even" if u % 2 == 0 else "odd" for u in range(40)] + ["odd"],
        }
    )
    model = Recommender("ease", min_support=1).fit(data, segments=pa.Table.from_pandas(segments))
    recs = model.recommend(["new_odd", "stranger"], k=3)
    odd = data[data.customer_id.str[1:].astype(int) % 2 == 1]
    odd = odd.groupby(["customer_id", "product_id"]).weight.sum().reset_index()
    top_odd = np.log2(1 + odd.weight).groupby(odd.product_id).sum().reset_index()
    top_odd = top_odd.sort_values(["weight", "product_id"], ascending=[False, True])
    new = recs[recs.customer_id == "new_odd"]
    assert new.product_id.tolist() == top_odd.product_id.head(3).tolist()
    assert (new.reason == "popular in your segment").all()
    stranger = recs[recs.customer_id == "stranger"]
    assert len(stranger) == 3 and (stranger.reason == "popular overall").all()
    # recommend() with no ids covers segment-only customers too.
    assert "new_odd" in set(model.recommend(k=1).customer_id)


def test_seen_column_excludes_only_purchases(data):
    frame = data.assign(purchased=(np.arange(len(data)) % 3 == 0).astype(int))
    model = Recommender("itemknn", seen_column="purchased").fit(frame)
    recs = model.recommend(k=10)
    bought = _seen(frame[frame.purchased == 1])
    viewed_only = _seen(frame) - bought
    assert not _seen(recs) & bought
    assert _seen(recs) & viewed_only  # items only viewed may come back as recommendations
    everything = Recommender("itemknn").fit(data).recommend(k=10)
    assert not _seen(everything) & _seen(data)
    kept = Recommender("itemknn").fit(data).recommend(["c0"], k=10, exclude_seen=False)
    assert _seen(kept) & _seen(data)


def test_determinism_and_auto_selection(data):
    a = Recommender("als", factors=4, iterations=5, random_state=7).fit(data)
    b = Recommender("als", factors=4, iterations=5, random_state=7).fit(data)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    cheap = {"min_support": 1, "factors": 4, "iterations": 5, "random_state": 0}
    auto = Recommender("auto", **cheap).fit(data)
    again = Recommender("auto", **cheap).fit(data)
    pd.testing.assert_frame_equal(auto.recommend(k=5), again.recommend(k=5))
    scores = {r["method"]: r["ndcg@10"] for r in auto.validation_}
    assert set(scores) == {"popularity", "itemknn", "ease", "als"}
    assert auto.method_ == max(scores, key=scores.get)
    candidates = [{"method": "ease", "history_half_life": 2.0}, "popularity"]
    tuned = Recommender("auto", candidates=candidates, min_support=1).fit(data)
    assert [r["method"] for r in tuned.validation_] == ["ease", "popularity"]
    assert tuned.method_ == "ease" and tuned.selected_params_ == {"history_half_life": 2.0}
    direct = Recommender("ease", history_half_life=2.0, min_support=1).fit(data)
    assert np.allclose(tuned.profile_.toarray(), direct.profile_.toarray())
    with pytest.raises(InputError, match="candidate"):
        Recommender("auto", candidates=[{"ease_lambda": 1.0}]).fit(data)


def test_auto_without_enough_history_falls_back_to_popularity(data):
    single = data.drop_duplicates("customer_id")  # one interaction each: nothing to hold out
    model = Recommender("auto", candidates=["itemknn", "ease"], min_support=1).fit(single)
    assert model.method_ == "popularity"
    assert [r["ndcg@10"] for r in model.validation_] == [None, None]
    assert len(model.recommend(k=2)) == 2 * len(single)


def test_selection_ignores_segments_unless_asked(data):
    # Segments built from the whole history would leak the validation period into selection.
    segs = {f"c{u}": "even" if u % 2 == 0 else "odd" for u in range(40)}
    plain = Recommender("auto", candidates=["popularity"]).fit(data)
    quiet = Recommender("auto", candidates=["popularity"]).fit(data, segments=segs)
    leaky = Recommender("auto", candidates=["popularity"], select_with_segments=True)
    leaky.fit(data, segments=segs)
    assert quiet.validation_[0]["ndcg@10"] == plain.validation_[0]["ndcg@10"]
    assert leaky.validation_[0]["ndcg@10"] > plain.validation_[0]["ndcg@10"]
    # The fitted model still uses the segments for its popularity fallback.
    assert (quiet.recommend(["c1"], k=3).reason == "popular in your segment").all()


def test_similar_products(data):
    sims = Recommender("popularity").fit(data).similar_products(k=5)
    assert list(sims.columns) == ["product_id", "rank", "similar_product_id", "score"]
    assert (sims.product_id != sims.similar_product_id).all()
    assert sims.groupby("product_id").size().max() == 5
    same_block = (sims.product_id.str[1:].astype(int) >= 10) == (
        sims.similar_product_id.str[1:].astype(int) >= 10
    )
    assert same_block.all()
    assert (sims.groupby("product_id").score.diff().dropna() <= 0).all()
    assert sims.score.between(0, 1).all()


@pytest.mark.parametrize("method", ["ease", "als", "itemknn"])
def test_registry_round_trip(data, method):
    model = Recommender(method, min_support=1, random_state=0).fit(data, segments={"x": "s"})
    back = Recommender.from_artifact(model.to_artifact())
    pd.testing.assert_frame_equal(back.recommend(k=3), model.recommend(k=3))
    pd.testing.assert_frame_equal(back.similar_products(3), model.similar_products(3))


def test_bad_input_is_reported_clearly(data):
    with pytest.raises(InputError, match="empty"):
        Recommender("popularity").fit(data.iloc[:0])
    with pytest.raises(InputError, match="timestamp"):
        Recommender("popularity").fit(data.drop(columns="timestamp"))
    with pytest.raises(InputError, match=r"pair\(s\) name product ids absent.*e\.g\. p3, p13"):
        Recommender("popularity").fit(
            data, products=[f"p{i}" for i in range(20) if i not in (3, 13)]
        )
    with pytest.raises(InputError, match="negative weight"):
        Recommender("popularity").fit(data.assign(weight=-1.0))
    with pytest.raises(InputError, match="null"):
        Recommender("popularity").fit(data.assign(customer_id=None))
    with pytest.raises(InputError, match="unknown weighting"):
        Recommender("popularity", weighting="sqrt").fit(data)
    with pytest.raises(InputError, match="unknown method"):
        Recommender("bpr").fit(data)
    with pytest.raises(NotFittedError):
        Recommender().recommend(["c1"])
    model = Recommender("popularity").fit(data, products=[f"p{i}" for i in range(25)])
    assert len(model.products_) == 25  # catalogue products without interactions are kept
    with pytest.raises(InputError, match="k must"):
        model.recommend(["c1"], k=0)


# ---------------------------------------------------------------------- warehouse flow
@pytest.fixture()
def warehouse(tmp_path, data):
    wh = Warehouse.open(tmp_path / "recs.duckdb")
    wh.write("features.customer_product_interactions", data)
    customers = pd.DataFrame({"customer_id": [f"c{u}" for u in range(40)] + ["new0", "new1"]})
    wh.write("features.customer_features", customers)
    segs = customers.assign(segment_id=[u % 2 for u in range(40)] + [1, 0])
    wh.write("ml.customer_segments", segs)
    yield wh
    wh.close()


def test_run_recommendations_writes_every_customer(warehouse):
    summary = run_recommendations(
        warehouse, k=3, segments="ml.customer_segments", min_support=1, random_state=0
    )
    recs = warehouse.read("ml.recommendations").to_pandas()
    assert list(recs.columns) == [
        "customer_id",
        "rank",
        "product_id",
        "score",
        "reason",
        "model_version",
        "as_of_date",
    ]
    assert recs.customer_id.nunique() == 42 and len(recs) == 126 == summary["rows"]
    assert summary["cold_start_customers"] == 2
    cold = recs[recs.customer_id.isin(["new0", "new1"])]
    assert (cold.reason == "popular in your segment").all()
    assert set(cold[cold.customer_id == "new1"].product_id) <= {f"p{i}" for i in range(20)}
    data = warehouse.read("features.customer_product_interactions").to_pandas()
    assert not _seen(recs) & _seen(data)
    record = registry.load_model(warehouse, "recommender")
    assert (recs.model_version == record.version).all() and record.version == summary[
        "model_version"
    ]
    assert {"model_ndcg@3", "popularity_ndcg@3"} <= set(record.metrics)
    sims = warehouse.read("ml.product_similarities").to_pandas()
    assert sims.groupby("product_id").size().max() <= 20
    assert set(sims.columns) == {
        "product_id",
        "rank",
        "similar_product_id",
        "score",
        "model_version",
        "as_of_date",
    }
    # A seeded rerun publishes the same version (content-derived).
    again = run_recommendations(
        warehouse, k=3, segments="ml.customer_segments", min_support=1, random_state=0
    )
    assert again["model_version"] == summary["model_version"]


def test_run_recommendations_reports_missing_tables(warehouse):
    with pytest.raises(Exception, match="does not exist"):
        run_recommendations(warehouse, "features.nope")
    warehouse.write("features.empty", block_data().iloc[:0])
    with pytest.raises(InputError, match="0 rows"):
        run_recommendations(warehouse, "features.empty")


def test_auto_chooses_on_a_sample_of_customers_and_fits_the_winner_on_all(data):
    from pyprofile.models.data import sample_rows

    cheap = {"min_support": 1, "factors": 4, "iterations": 5, "random_state": 3}
    sampled = Recommender("auto", selection_customers=12, **cheap).fit(data)
    users = np.unique(data["customer_id"])
    chosen = users[sample_rows(len(users), 12, 3)]
    on_those = Recommender("auto", selection_customers=None, **cheap).fit(
        data[data["customer_id"].isin(chosen)]
    )
    assert sampled.validation_ == on_those.validation_  # the same comparison, on 12 of 40
    assert len(sampled.customers_) == len(users)  # the winner sees everyone
    direct = Recommender(sampled.method_, **cheap).fit(data)
    pd.testing.assert_frame_equal(sampled.recommend(k=5), direct.recommend(k=5))
    with pytest.raises(InputError, match="selection_customers"):
        Recommender("auto", selection_customers=0).fit(data)


def test_held_out_metrics_come_from_the_sampled_customers(warehouse, data):
    """run_recommendations evaluates on the selection sample: its held-out metrics are those
    of the same model fitted on exactly those customers' earlier interactions."""
    from pyprofile.flows.recommendations import _holdout
    from pyprofile.models.data import sample_rows
    from pyprofile.models.ranking import time_split

    cheap = {"min_support": 1, "factors": 4, "iterations": 5, "random_state": 3}
    summary = run_recommendations(
        warehouse, method="itemknn", selection_customers=12, embeddings=False, **cheap
    )
    users = np.unique(data["customer_id"])
    chosen = users[sample_rows(len(users), 12, 3)]
    train, test = time_split(data[data["customer_id"].isin(chosen)].reset_index(drop=True), 0.2)
    probe = Recommender("itemknn", k=10, selection_customers=12, **cheap).fit(train)
    expected = _holdout(probe, train, test, None, 10)
    assert summary["metrics"] == pytest.approx(expected)
    assert summary["metrics"]["test_interactions"] < 0.3 * len(data)  # 12 of 40 customers
    assert summary["customers"] == 42  # the model published covers everyone


def test_the_sequence_candidate_must_win_by_its_margin(data):
    """auto keeps a closed-form model unless the network beats it by sequence_margin."""
    from pyprofile.models.recommend import choose

    ease, seq = {"method": "ease"}, {"method": "sequence", "dim": 8}
    assert choose([(ease, 0.100), (seq, 0.104)], 0.05) == ease  # +4 % < 5 %
    assert choose([(ease, 0.100), (seq, 0.106)], 0.05) == seq  # +6 % > 5 %
    assert choose([(ease, 0.100), (seq, 0.106)], 0.10) == ease
    assert choose([(seq, 0.106), (ease, 0.100)], 0.0) == seq
    assert choose([(ease, None), (seq, None)], 0.05) == {"method": "popularity"}
    assert choose([(ease, 0.1), ({"method": "itemknn"}, 0.1)], 0.05) == ease  # first on ties
    with pytest.raises(InputError, match="sequence_margin"):
        Recommender("auto", sequence_margin=-1).fit(data)
