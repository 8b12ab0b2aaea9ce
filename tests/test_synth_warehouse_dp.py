"""A differentially private synthetic warehouse (``RelationalSynthesizer(epsilon=...)``,
``synth-warehouse --epsilon``): per-customer sensitivity of the timeline release, the budget
spent, rare statuses and event types never released, no real session replayed, the funnel
and integrity kept, the flow and the CLI."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from pyprofile.cli import app
from pyprofile.errors import InputError
from pyprofile.flows.synth_warehouse import format_warehouse, read_shop, run_synth_warehouse
from pyprofile.models.synth import activity as act
from pyprofile.models.synth import dp, dp_timeline
from pyprofile.models.synth import timeline as tl
from pyprofile.models.synth.relational import RelationalSynthesizer
from pyprofile.warehouse import Warehouse

pytest.importorskip("opacus")

FAST = {"epochs": 2, "batch_size": 100}


@pytest.fixture(scope="module")
def shop(demo_db):
    with Warehouse.open(demo_db, read_only=True) as wh:
        real, _ = read_shop(wh)
    return real


def _indexed(shop: dict):
    frames = {k: v.to_pandas() for k, v in shop.items()}
    s = act.Shop(
        frames["customers"],
        frames["orders"],
        frames["order_items"],
        frames["products"],
        events=frames.get("events"),
    )
    ix = act.index_shop(s)
    return ix, act.link_sessions(ix, "purchase")


def _without(shop: dict, customer: str) -> dict:
    """The neighbouring shop: one customer and all its rows removed."""
    keep = pc.not_equal(shop["customers"]["customer_id"], customer)
    orders = shop["orders"].filter(pc.not_equal(shop["orders"]["customer_id"], customer))
    items = shop["order_items"].filter(
        pc.is_in(shop["order_items"]["order_id"], orders["order_id"].combine_chunks())
    )
    events = shop["events"].filter(pc.not_equal(shop["events"]["customer_id"], customer))
    return {
        "customers": shop["customers"].filter(keep),
        "orders": orders,
        "order_items": items,
        "products": shop["products"],
        "events": events,
    }


def test_one_customer_moves_the_release_by_at_most_its_sensitivity(shop):
    """Removing the heaviest customer (most orders and events) changes the concatenated
    blocks by at most sqrt(B) in L2, the sensitivity the noise is calibrated to."""
    orders = shop["orders"].to_pandas()
    heavy = orders["customer_id"].value_counts().index[0]
    sums = []
    for s in (shop, _without(shop, heavy)):
        ix, sessions = _indexed(s)
        sums.append(dp_timeline._blocks(ix, sessions, True, "product_view").sums)
    assert set(sums[0]) == set(sums[1])
    diff = np.concatenate([sums[0][k] - sums[1][k] for k in sorted(sums[0])])
    bound = math.sqrt(len(sums[0]))
    assert 0.5 * bound < np.linalg.norm(diff) <= bound + 1e-9
    for name in sums[0]:  # each block moves by at most 1
        assert np.linalg.norm(sums[0][name] - sums[1][name]) <= 1 + 1e-9, name


def test_each_customer_contributes_unit_norm_whatever_its_size():
    b = dp_timeline.Blocks(3)
    # customer 0: one event; customer 1: 100 events in two cells; customer 2: none
    b.add("x", [0] + [1] * 100, [0] + [1] * 60 + [2] * 40, 3)
    per_1 = np.array([0, 60, 40]) / np.hypot(60, 40)
    assert np.allclose(b.sums["x"], np.array([1.0, 0, 0]) + per_1)


def test_timeline_release_spends_its_share_at_its_delta(shop):
    ix, sessions = _indexed(shop)
    rng = np.random.default_rng(0)
    released = dp_timeline.fit_private(
        ix,
        sessions,
        shop["products"].to_pandas(),
        rng,
        epsilon=0.9,
        delta=5e-6,
        purchase_event="purchase",
        view_event="product_view",
    )
    assert released.epsilon == pytest.approx(0.9, rel=1e-3)
    assert released.delta == 5e-6
    noise = dp.solve_noise(lambda s: dp.spent([(s, 1.0, 1)], 2.5e-6), 0.9)
    assert dp.spent([(noise, 1.0, 1)], 2.5e-6) <= 0.9 + 1e-9


def test_rare_status_and_event_type_are_never_released(shop):
    """A status and an event type held by one customer only stay out of the model and of
    every synthetic row."""
    orders = shop["orders"].to_pandas()
    one = orders["customer_id"].iloc[0]
    orders["status"] = orders["status"].where(orders["customer_id"] != one, "fraud_hold")
    events = shop["events"].to_pandas()
    events["event_type"] = events["event_type"].where(events["customer_id"] != one, "coupon")
    rare = {**shop, "orders": pa.Table.from_pandas(orders, preserve_index=False)}
    rare["events"] = pa.Table.from_pandas(events, preserve_index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RelationalSynthesizer(**FAST, epsilon=3.0).fit(**rare)
    assert "fraud_hold" not in model.timeline_.statuses
    assert "coupon" not in model.timeline_.event_types
    # the most common ones clear the bar whatever the noise (rarer ones may not, at 1,500
    # customers and this epsilon)
    assert {"completed", "product_view"} <= set(
        model.timeline_.statuses + model.timeline_.event_types
    )
    out = model.sample(300)
    assert "fraud_hold" not in set(out["orders"]["status"].to_pylist())
    assert "coupon" not in set(out["events"]["event_type"].to_pylist())


def test_private_fit_reads_no_real_session_and_spends_the_budget(shop, monkeypatch):
    """The private path never builds the non-private timeline (calendar, baskets, real
    session templates); it spends at most the budget, keeps it through the artifact, keeps
    the funnel and integrity, and is not repeatable by seed (the noise is secret)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the private fit read real rows through the non-private model")

    monkeypatch.setattr(tl.TimelineModel, "fit", refuse)
    monkeypatch.setattr(tl, "fit_templates", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a large budget, so that every event type clears its bar and the funnel can be
        # checked (the mechanism is the same at any epsilon)
        model = RelationalSynthesizer(**FAST, epsilon=30.0, delta=1e-6).fit(**shop)
        again = RelationalSynthesizer(**FAST, epsilon=30.0, delta=1e-6).fit(**shop)
    assert model.epsilon_ <= 30.0 + 1e-5 and model.epsilon_ > 29.0
    assert model.delta_ == pytest.approx(1e-6)
    loaded = RelationalSynthesizer.from_artifact(model.to_artifact())
    assert (loaded.epsilon_, loaded.delta_) == (model.epsilon_, model.delta_)
    assert not np.array_equal(
        model.timeline_.calendar.order_days, again.timeline_.calendar.order_days
    )
    out = model.sample(400, random_state=1)
    orders, items, events = (out[k].to_pandas() for k in ("orders", "order_items", "events"))
    assert set(items["order_id"]) <= set(orders["order_id"])
    assert set(events["customer_id"]) <= set(out["customers"]["customer_id"].to_pylist())
    assert set(items["product_id"]) <= set(shop["products"]["product_id"].to_pylist())
    # purchase sessions end in their order: a purchase event at the order's time, and every
    # product of the order carted in that session
    buys = events[events["event_type"] == "purchase"]
    joined = orders.merge(buys, on="customer_id").query("event_at == ordered_at")
    assert len(joined) / len(orders) > 0.5
    carts = events[events["event_type"] == "add_to_cart"]
    lines = items.merge(joined[["order_id", "session_id"]], on="order_id")
    carted = lines.merge(carts, on=["session_id", "product_id"], how="left")
    assert carted["event_type"].notna().mean() > 0.95


def test_epsilon_for_the_customer_model_alone_is_refused(shop):
    model = RelationalSynthesizer(**FAST, synthesizer_params={"epsilon": 1.0})
    with pytest.raises(InputError, match="timelines unprotected"):
        model.fit(**shop)
    with pytest.raises(InputError, match="epsilon must be a positive number"):
        RelationalSynthesizer(**FAST, epsilon=-1.0).fit(**shop)


def test_flow_records_the_budget_and_the_cli_refuses_a_bad_one(demo_db, tmp_path):
    out = tmp_path / "private.duckdb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_synth_warehouse(
            demo_db, out, customers=200, epsilon=2.0, evaluate=False, **FAST
        )
    assert 1.9 < summary["dp_epsilon"] <= 2.0 + 1e-6
    assert summary["dp_delta"] <= 1e-5
    lines = dict(format_warehouse(summary))
    assert lines["differential privacy (per customer)"].startswith("epsilon 2.00")
    result = CliRunner().invoke(
        app,
        ["synth-warehouse", "--db", str(demo_db), "--out", str(tmp_path / "x.duckdb")]
        + ["--epsilon", "0", "--no-evaluate", "--epochs", "1"],
    )
    assert result.exit_code == 1
    assert "epsilon must be a positive number" in result.output
    assert "Traceback" not in result.output


def test_generated_sessions_follow_the_released_chain():
    """A chain page_view -> product_view(line) -> add_to_cart(line) -> purchase -> end, with
    one-minute gaps, generates exactly that session, anchored at its purchase."""
    n = 2 + 3 * dp_timeline.MAX_EVENT_TYPES
    chain = np.zeros((n, n))
    page, view, cart, buy = (2 + 3 * t + r for t, r in ((0, 0), (1, 1), (2, 1), (3, 0)))
    chain[dp_timeline.START, page] = chain[page, view] = chain[view, cart] = 100
    chain[cart, buy] = chain[buy, dp_timeline.END] = 100
    gaps = np.zeros((dp_timeline.MAX_EVENT_TYPES, len(dp_timeline.GAP_EDGES) - 1))
    minute = np.searchsorted(dp_timeline.GAP_EDGES, 60) - 1
    gaps[:, minute] = 100
    ev = dp_timeline._generate(chain, gaps, 1, 3, np.random.default_rng(0), 4000)
    t = dp_timeline._assemble([ev])
    assert len(t.kind) == 4000
    assert (t.length == 4).all() and (t.lines == 1).all() and (t.others == 0).all()
    first = slice(0, 4)
    assert list(t.ev_type[first]) == [0, 1, 2, 3]
    assert t.ev_offset[3] == 0 and (np.diff(t.ev_offset[first]) > 0).all()
    lo, hi = dp_timeline.GAP_EDGES[minute], dp_timeline.GAP_EDGES[minute + 1]
    assert lo <= -t.ev_offset[0] / 3 <= hi


def test_statuses_re_coded_to_the_released_ones(shop):
    ix, _ = _indexed(shop)
    noisy = np.zeros(act.MAX_STATUSES)
    noisy[: len(ix.statuses)] = [5.0, 100.0] + [0.0] * (len(ix.statuses) - 2)
    recoded, statuses = dp_timeline._recode_statuses(ix, noisy, bar=10.0)
    assert statuses == [ix.statuses[1]]
    assert (recoded.o_status == 0).all()
    none, nothing = dp_timeline._recode_statuses(replace(ix), np.zeros(act.MAX_STATUSES), 10.0)
    assert nothing == [] and none.o_status is None


def test_summary_columns_hidden_by_the_noise_still_give_a_shop(shop, monkeypatch):
    """A private customer model may leave out a timeline column its noise hides (here the
    start and the order count): the shop still comes out, starts drawn by the calendar."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RelationalSynthesizer(**FAST, epsilon=3.0).fit(**shop)
    original = model.customer_model_.sample_arrow

    def hidden(n, **kwargs):
        drawn = original(n, **kwargs)
        return drawn.drop_columns(
            [c for c in ("tl_start_at", "tl_orders") if c in drawn.column_names]
        )

    monkeypatch.setattr(model.customer_model_, "sample_arrow", hidden)
    out = model.sample(100)
    assert out["customers"].num_rows == 100
    assert out["orders"].num_rows == out["order_items"].num_rows == 0
    signup = out["customers"]["signup_at"]
    assert signup.null_count == 0
    first, last = model.timeline_.calendar.day0, model.timeline_.calendar.n_days
    days = pc.divide(pc.cast(pc.cast(signup, pa.timestamp("us")), pa.int64()), 86_400 * 10**6)
    assert first <= pc.min(days).as_py() and pc.max(days).as_py() <= first + last + 1


def test_walked_sessions_are_resampled_to_the_released_shapes():
    """Walks of 1 to 6 events (no line events); a released shape histogram with all its mass
    on 3 events keeps only 3-event sessions, in the templates' number."""
    rng = np.random.default_rng(1)
    length = rng.integers(1, 7, 5000)
    s = np.repeat(np.arange(5000), length)
    ev = {"s": s, "type": np.zeros(len(s), np.int64), "role": np.zeros(len(s), np.int64)}
    ev["t"] = np.arange(len(s))
    shape = np.zeros((dp_timeline.MAX_LINES + 1) * (dp_timeline.SESSION_LIMIT + 1))
    shape[dp_timeline._shape_cell(np.array([0]), np.array([3]))] = 50.0
    out = dp_timeline._resample(ev, shape, rng)
    sizes = np.bincount(out["s"])
    assert len(sizes) == dp_timeline.N_TEMPLATES and (sizes == 3).all()
    assert (np.diff(out["t"])[np.diff(out["s"]) == 0] == 1).all()  # sessions kept whole


def test_a_shop_without_events_statuses_discounts_or_prices_gets_a_private_copy(shop):
    """Optional columns and tables absent: their blocks are empty (zeros, not a crash), unit
    prices come from the noisy per-product release instead of the catalogue."""
    bare = {
        "customers": shop["customers"],
        "orders": shop["orders"].drop_columns(["status", "discount"]),
        "order_items": shop["order_items"],
        "products": shop["products"].drop_columns(["price"]),
    }
    empty = dp_timeline.Blocks(4)
    empty.add("x", [], [], 3)
    assert empty.sums["x"].dtype == float and not empty.sums["x"].any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RelationalSynthesizer(**FAST, epsilon=3.0).fit(**bare)
    out = model.sample(100)
    assert set(out) == {"customers", "orders", "order_items", "products"}
    assert model.timeline_.statuses == [] and not model.timeline_.has_discount
    prices = np.asarray(model.timeline_.baskets.p_price)
    assert np.isfinite(prices).all() and (prices > 0).all()
