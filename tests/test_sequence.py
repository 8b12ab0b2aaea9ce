"""The sequence recommender: it learns order, is causal, seeded, round-trips, rejects bad input
clearly, runs through the Recommender's harness and the warehouse flow, and its dbt input
never sees past as_of."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from pyprofile.errors import InputError, NotFittedError
from pyprofile.flows.recommendations import (
    PIPELINE_SEQUENCE_PARAMS,
    pipeline_inputs,
    run_recommendations,
)
from pyprofile.models.ranking import ranking_metrics
from pyprofile.models.recommend import Recommender
from pyprofile.models.sequence import SequenceRecommender
from pyprofile.models.sequence_data import tokens_before
from pyprofile.warehouse import Warehouse, registry

T0 = pd.Timestamp("2024-01-01")
N_ITEMS = 12
# Tiny and quick: a few hundred steps of a 16-wide, one-layer network on 8-event windows.
FAST = {
    "dim": 16,
    "layers": 1,
    "heads": 2,
    "max_length": 8,
    "batch_size": 32,
    "steps": 150,
    "eval_every": 50,
    "patience": 2,
}
RUN = {"threads": 1, "device": "cpu"}  # the Recommender's own settings, shared with its model


def cycle_events(n_customers: int = 60, length: int = 8, seed: int = 0) -> pd.DataFrame:
    """Customers walk a cycle of 12 products (the next is always the previous + 1) from a
    random start, alternating views and purchases, an hour apart: order is everything."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_customers):
        start = int(rng.integers(0, N_ITEMS))
        for t in range(length):
            rows.append(
                (
                    f"c{u}",
                    f"p{(start + t) % N_ITEMS:02d}",
                    T0 + pd.Timedelta(hours=10 * u + t),
                    "purchase" if t % 2 else "product_view",
                )
            )
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "event_type"])


def _next_of(events: pd.DataFrame) -> pd.Series:
    last = events.groupby("customer_id").product_id.last()
    return last.map(lambda p: f"p{(int(p[1:]) + 1) % N_ITEMS:02d}")


@pytest.fixture(scope="module")
def events():
    return cycle_events()


@pytest.fixture(scope="module")
def model(events):
    return SequenceRecommender(random_state=0, **FAST, **RUN).fit(events)


# ---------------------------------------------------------------------- the model
def test_learns_the_order_of_events(model, events):
    recs = model.recommend(k=3)
    assert list(recs.columns) == ["customer_id", "rank", "product_id", "score"]
    top = recs[recs["rank"] == 1].set_index("customer_id").product_id
    assert (top == _next_of(events).reindex(top.index)).mean() >= 0.9
    assert (recs.groupby("customer_id").score.diff().dropna() <= 0).all()
    seen = set(zip(events.customer_id, events.product_id, strict=True))
    assert not seen & set(zip(recs.customer_id, recs.product_id, strict=True))
    assert model.validation_ndcg_ is not None and model.best_step_ >= FAST["eval_every"]


def test_sampled_softmax_learns_the_order_too(events):
    sampled = SequenceRecommender(loss="sampled", negatives=4, random_state=0, **FAST, **RUN)
    top = sampled.fit(events).recommend(k=1).set_index("customer_id").product_id
    assert sampled._loss() == "sampled"
    assert (top == _next_of(events).reindex(top.index)).mean() >= 0.8


def test_sampled_loss_estimates_the_full_softmax():
    """With the log-Q correction, the sampled loss over many negatives drawn from a skewed
    proposal is the full cross-entropy."""
    from pyprofile.models.sequence_nets import SequenceNet
    from pyprofile.models.sequence_train import Budget, batch_loss

    generator = torch.Generator().manual_seed(0)
    net = SequenceNet(
        50, 1, max_length=6, dim=8, layers=1, heads=2, dropout_rate=0.0, time_gaps=False
    ).init_(generator)
    with torch.no_grad():
        net.item.weight.mul_(50.0)  # logits far from uniform
    batch = {
        "items": torch.randint(2, 52, (4, 6), generator=generator),
        "types": torch.full((4, 6), 2),
        "gaps": torch.zeros(4, 6, dtype=torch.long),
        "targets": torch.randint(0, 50, (4, 6), generator=generator),
    }
    skew = torch.linspace(0.0, 6.0, 50).exp()
    log_q = torch.log(skew / skew.sum())
    n = 400_000
    budget = Budget(1, 4, 0.0, 0.0, 1, 1, "sampled", n, 6)
    with torch.no_grad():
        full = batch_loss(net, batch, Budget(1, 4, 0.0, 0.0, 1, 1, "full", n, 6), None)
        sampled = batch_loss(net, batch, budget, generator, log_q)
    assert float(full) > 2 * math.log(50)  # far from uniform predictions
    assert abs(float(sampled) - float(full)) < 0.01 * float(full)


def test_target_types_predict_the_next_purchase_through_the_views():
    """Purchases walk the cycle; two random views of other products come before each. The
    purchase model reads the views and predicts the next purchase; the every-event model's
    next product is a view."""
    rng = np.random.default_rng(1)
    rows = []
    for u, start in enumerate(rng.integers(0, N_ITEMS, 200)):
        for t in range(4):
            at = T0 + pd.Timedelta(hours=10 * u + 2 * t)
            for v in range(2):
                view = f"v{rng.integers(0, 30):02d}"
                rows.append((f"c{u}", view, at + pd.Timedelta(minutes=v), "product_view"))
            bought = f"p{(start + t) % N_ITEMS:02d}"
            rows.append((f"c{u}", bought, at + pd.Timedelta(hours=1), "purchase"))
    events = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "event_type"])
    bought = events[events.event_type == "purchase"]
    expected = _next_of(bought)
    params = {**FAST, "dim": 32, "steps": 400, "eval_every": 100, **RUN}

    def top(**extra):
        model = SequenceRecommender(random_state=0, **params, **extra).fit(events)
        return model, model.recommend(k=1).set_index("customer_id").product_id

    model, buying = top(target_types=["purchase"])
    assert (buying == expected.reindex(buying.index)).mean() >= 0.9
    assert model.validation_ndcg_ is not None  # held-out purchases, new among purchases
    # "seen" is what was bought: a product only viewed can still be recommended
    every = model.recommend(["c0"], k=100)
    mine = events[events.customer_id == "c0"]
    assert set(mine.product_id[mine.event_type == "product_view"]) <= set(every.product_id)
    assert not set(mine.product_id[mine.event_type == "purchase"]) & set(every.product_id)
    _, anything = top()
    assert anything.str.startswith("v").mean() >= 0.9
    with pytest.raises(InputError, match="target_types refund not found in column event_type"):
        SequenceRecommender(target_types=["refund"], **FAST, **RUN).fit(events)


def test_seeded_fits_are_identical(events, model):
    again = SequenceRecommender(random_state=0, **FAST, **RUN).fit(events)
    assert again.to_artifact() == model.to_artifact()
    other = SequenceRecommender(random_state=1, **FAST, **RUN).fit(events)
    assert other.to_artifact() != model.to_artifact()


def test_attention_is_causal(model):
    net = model.net_.eval()
    rng = np.random.default_rng(0)
    items = torch.as_tensor(rng.integers(2, N_ITEMS + 2, (3, 8)))
    items[:, :2] = 0  # left padding
    types = torch.where(items > 0, 2, 0)
    gaps = torch.where(items > 0, 5, 0)
    with torch.no_grad():
        before = net.hidden(items, types, gaps)
        changed = items.clone()
        changed[:, 5] = (changed[:, 5] - 1) % N_ITEMS + 2  # another product at position 5
        after = net.hidden(changed, types, gaps)
        padded = items.clone()
        padded[:, 0] = 3  # a token where there was padding: real tokens never saw it
        shifted = net.hidden(padded, torch.where(padded > 0, 2, 0), gaps)
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=0)
    assert not torch.allclose(before[:, 5:], after[:, 5:])
    assert not torch.allclose(before[:, 2:], shifted[:, 2:])  # ...until it is a real token


def test_round_trip_gives_identical_recommendations_and_embeddings(model):
    back = SequenceRecommender.from_artifact(model.to_artifact())
    pd.testing.assert_frame_equal(back.recommend(k=4), model.recommend(k=4))
    pd.testing.assert_frame_equal(back.embed(), model.embed())
    for name in ("products_", "customers_", "sequence_items_", "seen_items_", "popularity_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    assert back.history_ == model.history_ and back.best_step_ == model.best_step_
    assert back.to_artifact() == model.to_artifact()


def test_embeddings_and_unknown_customers(model, events):
    emb = model.embed(["c0", "c1", "stranger"])
    assert list(emb.columns) == ["customer_id"] + [f"embedding_{i:02d}" for i in range(16)]
    assert emb.iloc[:, 1:].notna().all().all() and len(emb) == 3
    # A customer the model never saw is an empty history: the start token's prediction.
    cold = model.recommend(["stranger", "another"], k=3)
    lists = cold.groupby("customer_id").product_id.apply(tuple)
    assert lists.nunique() == 1
    assert (cold.groupby("customer_id").size() == 3).all()


def test_embeddings_of_histories_given_as_events(model, events):
    """embed(events=...) embeds the given histories: the fitted ones give the stored
    embeddings, a shorter history another one, no events the empty history's."""
    ids = ["c0", "c1", "stranger"]
    pd.testing.assert_frame_equal(model.embed(ids, events=events), model.embed(ids))
    strange = events.iloc[:1].assign(product_id="p99", event_type="refund")
    pd.testing.assert_frame_equal(
        model.embed(ids, events=pd.concat([events, strange])), model.embed(ids)
    )
    mine = events[events.customer_id == "c0"]
    shorter = model.embed(["c0"], events=mine.iloc[:-2]).iloc[0, 1:].to_numpy(float)
    assert not np.allclose(shorter, model.embed(["c0"]).iloc[0, 1:].to_numpy(float))
    none = model.embed(["c0", "c1"], events=events.iloc[:0])
    empty = model.embed(["stranger"]).iloc[0, 1:].to_numpy(float)
    np.testing.assert_allclose(none.iloc[:, 1:].to_numpy(float), [empty, empty])
    assert list(model.embed(events=mine).customer_id) == ["c0"]


def test_score_sequences_matches_stored_histories_and_skips_unknowns(model, events):
    mine = events[events.customer_id.isin(["c0", "c1"])]
    pd.testing.assert_frame_equal(model.score_sequences(mine, 3), model.recommend(["c0", "c1"], 3))
    strange = pd.concat([mine, mine.iloc[:1].assign(product_id="p99", event_type="refund")])
    with pytest.raises(InputError, match=r"1 row\(s\) name a product_id .*p99.*event_type"):
        model.score_sequences(strange, 3)
    skipped = model.score_sequences(strange, 3, unknown="ignore")
    pd.testing.assert_frame_equal(skipped, model.score_sequences(mine, 3))
    assert model.score_sequences(mine.iloc[:0], 3).empty


def test_sql_function_scores_histories_given_in_sql(model, events):
    import duckdb

    con = duckdb.connect()
    con.register("seq", events)
    con.create_function(
        "py_next_items",
        model.next_items_udf(3),
        ["VARCHAR[]", "VARCHAR[]", "TIMESTAMP[]"],
        "VARCHAR[]",
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    rows = con.execute(
        "select customer_id, py_next_items(list(product_id order by timestamp), "
        "list(event_type order by timestamp), list(timestamp order by timestamp)) "
        "from seq group by customer_id order by customer_id"
    ).fetchall()
    expected = model.recommend(k=3).groupby("customer_id").product_id.apply(list)
    assert {c: items for c, items in rows} == expected.to_dict()
    cold = con.execute("select py_next_items(null, null, null), py_next_items(['zz'], ['x'], null)")
    first, unknown = cold.fetchone()
    assert first == unknown == model.recommend(["nobody"], 3).product_id.tolist()


def test_bad_input_is_reported_clearly(events):
    fast = SequenceRecommender(**FAST, **RUN)
    with pytest.raises(InputError, match=r"empty.*0 rows"):
        fast.fit(events.iloc[:0])
    single = events.drop_duplicates("customer_id")
    with pytest.raises(InputError, match=r"all 60 customer\(s\) have a single event"):
        fast.fit(single)
    with pytest.raises(InputError, match=r"\(480 rows\): 1 row\(s\) have a null .*product_id"):
        fast.fit(events.assign(product_id=events.product_id.where(events.index > 0)))
    with pytest.raises(InputError, match="lacks column.*product_id"):
        fast.fit(events.drop(columns="product_id"))
    with pytest.raises(InputError, match="unknown loss"):
        SequenceRecommender(loss="hinge").fit(events)
    with pytest.raises(InputError, match="multiple of heads"):
        SequenceRecommender(dim=10, heads=4).fit(events)
    with pytest.raises(NotFittedError):
        SequenceRecommender().recommend(["c0"])
    with pytest.raises(InputError, match="sequence_params: unknown setting.*random_state"):
        Recommender("sequence", sequence_params={"random_state": 3}).fit(events)


def test_customers_with_one_event_are_kept(events):
    mixed = pd.concat([events, pd.DataFrame({"customer_id": ["solo"], "product_id": ["p03"]})])
    mixed["timestamp"] = mixed.timestamp.fillna(T0)
    mixed["event_type"] = mixed.event_type.fillna("purchase")
    model = SequenceRecommender(random_state=0, **{**FAST, "steps": 20}, **RUN).fit(mixed)
    assert "solo" in set(model.customers_)
    recs = model.recommend(["solo"], k=3)
    assert len(recs) == 3 and "p03" not in set(recs.product_id)


def test_tokens_before_cuts_each_customer_at_its_held_out_time(events):
    held = pd.DataFrame({"customer_id": ["c0"], "timestamp": [T0 + pd.Timedelta(hours=3)]})
    earlier = tokens_before(events, held)
    assert earlier[earlier.customer_id == "c0"].timestamp.max() < held.timestamp[0]
    assert len(earlier[earlier.customer_id == "c0"]) == 3
    assert len(earlier) == len(events) - 5


# ---------------------------------------------------------------------- the common harness
def test_recommender_sequence_method_has_the_common_interface(events):
    data = events.assign(weight=1.0)
    rec = Recommender("sequence", sequence_params=FAST, random_state=0, **RUN)
    recs = rec.fit(data).recommend(k=3)
    assert list(recs.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    assert (recs.groupby("customer_id").size() == 3).all()
    top = recs[recs["rank"] == 1].set_index("customer_id").product_id
    assert (top == _next_of(events).reindex(top.index)).mean() >= 0.9
    assert not set(zip(data.customer_id, data.product_id, strict=True)) & set(
        zip(recs.customer_id, recs.product_id, strict=True)
    )
    cold = rec.recommend(["new"], k=3)
    assert (cold.reason == "popular overall").all() and len(cold) == 3
    back = Recommender.from_artifact(rec.to_artifact())
    pd.testing.assert_frame_equal(back.recommend(k=3), recs)
    assert back.to_artifact() == rec.to_artifact()


def test_auto_picks_the_sequence_model_only_where_it_wins(events):
    data = events.assign(weight=1.0)
    sequence = {"method": "sequence", "sequence_params": FAST}
    auto = Recommender("auto", candidates=["popularity", "ease", sequence], min_support=1, **RUN)
    auto.fit(data)
    scores = {r["method"]: r["ndcg@10"] for r in auto.validation_}
    assert auto.method_ == "sequence" and scores["sequence"] > scores["ease"]
    # Default candidates never train the network.
    assert Recommender("auto", min_support=1).fit(data).sequence_model_ is None


def test_auto_considers_the_sequence_model_when_named(events):
    data = events.assign(weight=1.0)
    default = Recommender("auto", min_support=1, sequence_params=FAST, random_state=0, **RUN)
    default.fit(data, sequences=events)  # opt-in: events alone do not add the network
    assert [r["method"] for r in default.validation_] == ["popularity", "itemknn", "ease", "als"]
    named = ["popularity", "itemknn", "ease", "als", "sequence"]
    auto = Recommender(
        "auto", candidates=named, min_support=1, sequence_params=FAST, random_state=0, **RUN
    )
    auto.fit(data, sequences=events)
    methods = [r["method"] for r in auto.validation_]
    assert methods == named
    scores = {r["method"]: r["ndcg@10"] for r in auto.validation_}
    assert auto.method_ == max(scores, key=scores.get) == "sequence"
    # Events too short to train one before the validation part: the candidate is skipped
    # with its reason and the others compete as before.
    firsts = events.drop_duplicates("customer_id")
    auto.fit(data, sequences=firsts)
    skipped = [r for r in auto.validation_ if r["method"] == "sequence"]
    assert skipped[0]["ndcg@10"] is None and "single event" in skipped[0]["skipped"]
    assert auto.method_ != "sequence" and auto.sequence_model_ is None


def test_harness_on_a_time_split(events):
    data = events.assign(weight=1.0)
    test = data.groupby("customer_id").tail(1)
    train = data.drop(test.index)
    rec = Recommender("sequence", sequence_params=FAST, random_state=0, **RUN)
    rec.fit(train, sequences=tokens_before(events, test))
    pop = Recommender("popularity").fit(train)
    assert rec.evaluate(test, 10)["ndcg@10"] > pop.evaluate(test, 10)["ndcg@10"] + 0.2
    recs = rec.recommend(test.customer_id.unique(), 10, reasons=False)
    assert ranking_metrics(recs, test, 10, train=train)["ndcg@10"] > 0.8


# ---------------------------------------------------------------------- the warehouse flow
@pytest.fixture()
def warehouse(tmp_path, events):
    wh = Warehouse.open(tmp_path / "seq.duckdb")
    pairs = (
        events.groupby(["customer_id", "product_id"], as_index=False)
        .agg(last_interaction_at=("timestamp", "max"))
        .assign(weight=1.0)
    )
    wh.write("features.customer_product_interactions", pairs)
    customers = pd.DataFrame({"customer_id": [f"c{u}" for u in range(60)] + ["new0"]})
    wh.write("features.customer_features", customers.assign(as_of_date=T0.date()))
    wh.write("features.customer_event_sequences", events.rename(columns={"timestamp": "event_at"}))
    yield wh
    wh.close()


def test_flow_publishes_sequence_recommendations_and_embeddings(warehouse):
    summary = run_recommendations(
        warehouse,
        k=3,
        method="sequence",
        sequences="features.customer_event_sequences",
        time_column="last_interaction_at",
        sequence_params=FAST,
        min_support=1,
        threads=1,
    )
    assert summary["method"] == "sequence" and summary["embeddings"] == 61
    recs = warehouse.read("ml.recommendations").to_pandas()
    assert recs.customer_id.nunique() == 61 and len(recs) == 183
    emb = warehouse.read("ml.customer_embeddings").to_pandas()
    assert list(emb.columns[:2]) == ["customer_id", "embedding_00"]
    assert list(emb.columns[-3:]) == ["has_events", "model_version", "as_of_date"]
    assert emb.set_index("customer_id").has_events.sum() == 60
    record = registry.load_model(warehouse, "sequence_recommender")
    assert (emb.model_version == record.version).all()
    assert record.version == summary["sequence_model_version"]
    # The registered model gives exactly the published embeddings, and the recommender's
    # artifact the published recommendations.
    stored = SequenceRecommender.from_artifact(record.artifact)
    expected = stored.embed(emb.customer_id)
    np.testing.assert_array_equal(
        emb[expected.columns[1:]].to_numpy(), expected.iloc[:, 1:].to_numpy()
    )
    rec = Recommender.from_artifact(registry.load_model(warehouse, "recommender").artifact)
    again = rec.recommend(recs.customer_id.unique(), 3)
    np.testing.assert_array_equal(again.product_id.to_numpy(), recs.product_id.to_numpy())
    assert {"model_ndcg@3", "popularity_ndcg@3"} <= set(
        registry.load_model(warehouse, "recommender").metrics
    )


def test_flow_auto_selects_among_all_candidates_and_publishes_the_chosen_model(warehouse):
    summary = run_recommendations(
        warehouse,
        k=3,
        method="auto",
        candidates=["popularity", "itemknn", "ease", "als", "sequence"],
        sequences="features.customer_event_sequences",
        time_column="last_interaction_at",
        sequence_params=FAST,
        min_support=1,
        threads=1,
    )
    scores = {r["method"]: r["ndcg@10"] for r in summary["validation"]}
    assert set(scores) == {"popularity", "itemknn", "ease", "als", "sequence"}
    assert summary["method"] == max(scores, key=scores.get) == "sequence"
    # The embeddings come from the very model that recommends, registered once more.
    rec = Recommender.from_artifact(registry.load_model(warehouse, "recommender").artifact)
    stored = registry.load_model(warehouse, "sequence_recommender").artifact
    assert rec.sequence_model_.to_artifact() == stored
    inputs = pipeline_inputs(warehouse)  # (closes the warehouse: last)
    assert inputs["sequences"] == "features.customer_event_sequences"
    assert inputs["sequence_params"] == PIPELINE_SEQUENCE_PARAMS
    assert inputs["candidates"] == ["popularity", "itemknn", "ease", "als", "sequence"]


def test_flow_without_a_trainable_sequence_table_skips_embeddings(warehouse, events):
    run_recommendations(
        warehouse,
        k=3,
        method="popularity",
        sequences="features.customer_event_sequences",
        time_column="last_interaction_at",
        sequence_params=FAST,
    )
    assert warehouse.exists("ml.customer_embeddings")
    single = events.drop_duplicates("customer_id").rename(columns={"timestamp": "event_at"})
    warehouse.write("features.customer_event_sequences", single)
    summary = run_recommendations(
        warehouse,
        k=3,
        method="popularity",
        sequences="features.customer_event_sequences",
        time_column="last_interaction_at",
    )
    assert "single event" in summary["skipped"]["customer embeddings"]
    assert "features.customer_event_sequences" in summary["skipped"]["customer embeddings"]
    assert not warehouse.exists("ml.customer_embeddings")  # no stale embeddings left
    warehouse.write(
        "features.customer_event_sequences",
        single.assign(product_id=None).astype({"product_id": object}),
    )
    with pytest.raises(InputError, match=r"table features.customer_event_sequences .*product_id"):
        run_recommendations(
            warehouse,
            sequences="features.customer_event_sequences",
            time_column="last_interaction_at",
        )


# ---------------------------------------------------------------------- the dbt model
@pytest.mark.slow
def test_dbt_sequences_are_point_in_time_and_truncated(tmp_path):
    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo

    path = tmp_path / "pit.duckdb"
    generate_demo(path, customers=120, seed=5)
    settings = {"as_of": "2025-03-31", "sequence_length": 6}
    run_dbt("run", path, select=["+customer_event_sequences"], vars=settings)
    with Warehouse.open(path) as wh:
        first = wh.read("features.customer_event_sequences").to_pandas()
        expected = _latest_tokens_in_pandas(wh, pd.Timestamp("2025-03-31"), 6)
        got = first.drop(columns="as_of_date").sort_values(["customer_id", "position"])
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected, check_dtype=False, check_index_type=False
        )
        # Everything after as_of goes: the table must not change.
        wh.execute("delete from raw.events where event_at >= timestamp '2025-04-01'")
        wh.execute(
            "delete from raw.order_items where order_id in "
            "(select order_id from raw.orders where ordered_at >= timestamp '2025-04-01')"
        )
        wh.execute("delete from raw.orders where ordered_at >= timestamp '2025-04-01'")
    run_dbt("run", path, select=["+customer_event_sequences"], vars=settings, full_refresh=True)
    with Warehouse.open(path) as wh:
        second = wh.read("features.customer_event_sequences").to_pandas()
    assert len(first) > 0 and first.event_at.max() < pd.Timestamp("2025-04-01")
    pd.testing.assert_frame_equal(first, second)
    assert first.position.max() == 6 and (first.position <= first.event_count).all()
    order = first.sort_values(["customer_id", "position"])
    assert (order.groupby("customer_id").event_at.diff().dropna() >= pd.Timedelta(0)).all()
    assert set(first.event_type) <= {"product_view", "add_to_cart", "purchase"}
    per_customer = first.groupby("customer_id")
    assert (per_customer.position.max() == per_customer.event_count.min().clip(upper=6)).all()


def _latest_tokens_in_pandas(wh, as_of: pd.Timestamp, length: int) -> pd.DataFrame:
    """The sequence model's rows computed independently: product events (not purchases) and
    purchased order lines up to as_of, each customer's latest ``length`` by (time, product,
    type), numbered from the earliest kept."""
    events = wh.read("staging.stg_shop__events").to_pandas()
    events = events[
        events.product_id.notna()
        & (events.event_type != "purchase")
        & (events.event_at.dt.normalize() <= as_of)
    ]
    lines = wh.read("features.int_order_lines").to_pandas()
    lines = lines[lines.is_purchase & (pd.to_datetime(lines.order_date) <= as_of)]
    tokens = pd.concat(
        [
            events[["customer_id", "event_at", "product_id", "event_type"]],
            lines[["customer_id", "ordered_at", "product_id"]]
            .rename(columns={"ordered_at": "event_at"})
            .assign(event_type="purchase"),
        ]
    )
    tokens = tokens.sort_values(["customer_id", "event_at", "product_id", "event_type"])
    tokens["event_count"] = tokens.groupby("customer_id").customer_id.transform("size")
    kept = tokens.groupby("customer_id").tail(length).copy()
    kept["position"] = kept.groupby("customer_id").cumcount() + 1
    columns = ["customer_id", "position", "event_at", "product_id", "event_type", "event_count"]
    return kept[columns].reset_index(drop=True)
