"""Synthesizer and its data transformer: types, bounds, nulls, conditions, seeds, registry."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pyprofile.errors import InputError, NotFittedError
from pyprofile.models.synth import DataTransformer, Synthesizer
from pyprofile.models.synth.transformer import fast_gmm
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.registry import load_model, save_model

N = 400


def customers(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(10, 0.5, n), 2)
    income[rng.random(n) < 0.2] = np.nan
    spend = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.gamma(2, 50, n), 2))
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(
        object
    )
    region[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "email": [f"c{i}@example.com" for i in range(n)],
            "age": rng.integers(18, 91, n),
            "income": income,
            "spend_amount": spend,
            "return_rate": rng.beta(1, 5, n),
            "order_count": rng.poisson(6, n) + 1,
            "r_score": rng.integers(1, 6, n),
            "region": region,
            "has_purchased": rng.random(n) < 0.7,
            "signup_date": [
                date(2022, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 700, n)
            ],
            "last_seen_at": [
                datetime(2024, 1, 1) + timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, n)
            ],
            "as_of_date": [date(2024, 6, 30)] * n,
            "country": ["NL"] * n,
        }
    )


@pytest.fixture(scope="module")
def data():
    return customers()


@pytest.fixture(scope="module")
def fitted(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(epochs=60, batch_size=100, random_state=0, device="cpu").fit(data)


@pytest.fixture(scope="module")
def sample(fitted):
    return fitted.sample(2000)


def test_ids_and_pii_are_left_out_with_a_message(data):
    with pytest.warns(UserWarning, match="customer_id: identifier.*email: personal data"):
        model = Synthesizer(epochs=1, batch_size=100, device="cpu").fit(data)
    assert set(model.transformer_.excluded_) == {"customer_id", "email"}
    assert "customer_id" not in model.sample(5).columns


def test_dtypes_and_category_sets(data, sample):
    assert list(sample.columns) == [c for c in data.columns if c not in ("customer_id", "email")]
    for col in ("age", "order_count", "r_score"):
        assert sample[col].dtype == np.int64
    assert sample["has_purchased"].dtype == bool
    assert isinstance(sample["signup_date"].iloc[0], date)
    assert pd.api.types.is_datetime64_any_dtype(sample["last_seen_at"])
    assert set(sample["region"].dropna()) <= {"north", "south", "east", "west"}
    assert set(sample["r_score"]) <= {1, 2, 3, 4, 5}


def test_bounds_and_rounding(data, sample):
    for col in ("age", "income", "spend_amount", "return_rate", "order_count"):
        assert sample[col].min() >= data[col].min()
        assert sample[col].max() <= data[col].max()
    assert np.allclose(sample["income"].dropna(), sample["income"].dropna().round(2))
    assert sample["signup_date"].min() >= data["signup_date"].min()
    assert sample["signup_date"].max() <= data["signup_date"].max()
    # the point mass at 0 spend survives as exact zeros
    assert (sample["spend_amount"] == 0).mean() > 0.1


def test_constant_columns_stay_constant(sample):
    assert set(sample["country"]) == {"NL"}
    assert set(sample["as_of_date"]) == {date(2024, 6, 30)}


def test_null_rates_are_reproduced(data, sample):
    assert sample["income"].isna().mean() == pytest.approx(data["income"].isna().mean(), abs=0.1)
    assert sample["region"].isna().mean() == pytest.approx(data["region"].isna().mean(), abs=0.08)
    assert sample["age"].notna().all()


@pytest.mark.parametrize(
    ("column", "value"),
    [("region", "west"), ("has_purchased", False), ("r_score", 5), ("r_score", "2")],
)
def test_conditional_sampling_is_exact(fitted, column, value):
    rows = fitted.sample(3000, conditions={column: value})
    expected = int(value) if column == "r_score" else value
    assert len(rows) == 3000
    assert (rows[column] == expected).all()


def test_two_conditions_at_once(fitted):
    rows = fitted.sample(500, conditions={"region": "east", "has_purchased": True})
    assert (rows["region"] == "east").all() and rows["has_purchased"].all()


def test_bad_conditions(fitted):
    with pytest.raises(InputError, match="no category 'nowhere'"):
        fitted.sample(10, conditions={"region": "nowhere"})
    with pytest.raises(InputError, match="numeric column income"):
        fitted.sample(10, conditions={"income": 5.0})
    with pytest.raises(InputError, match="not a modelled column"):
        fitted.sample(10, conditions={"email": "x"})


def test_same_seed_same_samples(data):
    def run(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Synthesizer(epochs=2, batch_size=100, random_state=seed, device="cpu")
            return model.fit(data).sample(200)

    a, b, c = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_sampling_is_repeatable_and_seedable(fitted):
    pd.testing.assert_frame_equal(fitted.sample(100), fitted.sample(100))
    assert not fitted.sample(100).equals(fitted.sample(100, random_state=7))


def test_label_rate_matches_exactly(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(epochs=2, batch_size=100, device="cpu").fit(data, label="has_purchased")
    rows = model.sample(1000)
    assert rows["has_purchased"].mean() == pytest.approx(data["has_purchased"].mean(), abs=0.001)


def test_registry_round_trip_gives_identical_samples(fitted):
    wh = Warehouse.open(":memory:")
    version = save_model(wh, "synth_test", fitted.to_artifact())
    record = load_model(wh, "synth_test")
    loaded = Synthesizer.from_artifact(record.artifact)
    assert record.version == version
    assert loaded.get_params() == fitted.get_params()
    assert loaded.best_epoch_ == fitted.best_epoch_ and loaded.history_ == fitted.history_
    pd.testing.assert_frame_equal(loaded.sample(500), fitted.sample(500))
    pd.testing.assert_frame_equal(
        loaded.sample(300, conditions={"region": "north"}),
        fitted.sample(300, conditions={"region": "north"}),
    )
    # content-derived, idempotent
    assert save_model(wh, "synth_test", fitted.to_artifact()) == version


def test_history_and_best_checkpoint(fitted):
    assert [h["epoch"] for h in fitted.history_] == list(range(1, 61))
    assert all(np.isfinite(h["loss_d"]) and np.isfinite(h["loss_g"]) for h in fitted.history_)
    assert all(h["gradient_penalty"] > 0 and h["loss_moment"] >= 0 for h in fitted.history_)
    assert fitted.history_[-1]["loss_moment"] < fitted.history_[0]["loss_moment"]
    scored = {h["epoch"]: h["quality_estimate"] for h in fitted.history_ if "quality_estimate" in h}
    assert list(scored) == [10, 20, 30, 40, 50, 60]
    assert scored[fitted.best_epoch_] == max(scored.values())


def test_arrow_input_and_explicit_discrete_columns(data):
    table = pa.Table.from_pandas(data[["age", "income", "region"]], preserve_index=False)
    model = Synthesizer(epochs=1, batch_size=100, device="cpu").fit(table, discrete_columns=["age"])
    assert model.transformer_.discrete_ == ["age", "region"]
    assert set(model.sample(300)["age"]) <= set(data["age"])


def test_bad_input_is_named():
    with pytest.raises(InputError, match="empty"):
        Synthesizer(epochs=1).fit(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    with pytest.raises(InputError, match=r"notes are null on all 50 rows"):
        Synthesizer(epochs=1, batch_size=10).fit(
            pd.DataFrame({"a": np.arange(50.0), "notes": pd.Series([None] * 50, dtype=object)})
        )
    nested = pa.table({"a": np.arange(50.0), "tags": pa.array([[1, 2]] * 50)})
    with pytest.raises(InputError, match=r"unsupported column type.*tags.*50 rows"):
        Synthesizer(epochs=1, batch_size=10).fit(nested)
    with pytest.raises(InputError, match="multiple of pac"):
        Synthesizer(batch_size=55).fit(pd.DataFrame({"a": np.arange(50.0)}))
    with pytest.raises(InputError, match="label column churn"):
        Synthesizer(batch_size=10).fit(pd.DataFrame({"a": np.arange(50.0)}), label="churn")
    with pytest.raises(NotFittedError):
        Synthesizer().sample(5)


def test_single_category_and_numeric_only_tables():
    df = pd.DataFrame({"kind": ["a"] * 60, "x": np.linspace(0, 1, 60)})
    out = Synthesizer(epochs=2, batch_size=20, device="cpu").fit(df).sample(50)
    assert set(out["kind"]) == {"a"}
    only = Synthesizer(epochs=2, batch_size=20, device="cpu").fit(df[["x"]]).sample(50)
    assert only["x"].between(0, 1).all()


def test_fast_gmm_finds_the_modes():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-5, 1, 3000), rng.normal(5, 0.5, 1000)])
    y = rng.normal(0, 1, 4000)
    y[:100] = np.nan
    means, stds, weights = fast_gmm(np.stack([x, y], 1), 10, rng)
    big = weights[0] > 0.05
    clusters = sorted(
        (
            np.average(means[0, big & (means[0] < 0)], weights=weights[0, big & (means[0] < 0)]),
            np.average(means[0, big & (means[0] > 0)], weights=weights[0, big & (means[0] > 0)]),
        )
    )
    assert clusters == pytest.approx([-5, 5], abs=0.3)
    assert weights[0, means[0] < 0].sum() == pytest.approx(0.75, abs=0.02)
    assert weights.sum(1) == pytest.approx([1, 1])
    mix_mean = (weights[1] * means[1]).sum()
    assert mix_mean == pytest.approx(np.nanmean(y), abs=0.05)


def test_transformer_round_trip(data):
    t = DataTransformer(random_state=0).fit(data.drop(columns=["customer_id", "email"]))
    matrix = t.transform(data.drop(columns=["customer_id", "email"]))
    assert matrix.shape == (N, t.output_dim_)
    values = matrix[:, : t.n_values_]
    assert np.abs(values).max() <= 0.99
    codes = np.stack(
        [
            matrix[:, t.n_values_ + b.start : t.n_values_ + b.start + b.width].argmax(1)
            for b in t.blocks_
        ],
        1,
    )
    back = t.inverse_transform(values, codes).to_pandas()
    for col in ("region", "has_purchased", "r_score", "as_of_date", "country"):
        pd.testing.assert_series_equal(back[col], data[col], check_dtype=False)
    # numeric columns come back through 1001 stored quantiles and a value clipped to +-0.99
    # of its mode: close, not bit-exact (the extreme tails move most)
    days = (pd.to_datetime(back["signup_date"]) - pd.to_datetime(data["signup_date"])).dt.days
    assert days.abs().quantile(0.95) <= 0.02 * 700
    for col in ("age", "order_count", "income", "spend_amount", "return_rate"):
        span = data[col].max() - data[col].min()
        diff = (back[col] - data[col]).abs()
        assert diff.quantile(0.95) <= 0.02 * span, col
        assert diff.max() <= 0.15 * span, col
        assert back[col].isna().equals(data[col].isna())


def test_calibration_maps_generated_columns_onto_real_marginals():
    """Even a barely trained generator yields the real marginal of every numeric column: the
    quantile mapping fitted after training carries its generated CDF onto the real one."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    n = 1500
    df = pd.DataFrame(
        {
            "bimodal": np.concatenate([rng.normal(-4, 1, n // 2), rng.normal(6, 0.5, n // 2)]),
            "spend": np.where(rng.random(n) < 0.4, 0.0, rng.gamma(2, 30, n)),
            "kind": rng.choice(["a", "b"], n),
        }
    )
    model = Synthesizer(epochs=2, batch_size=100, select_best=False, device="cpu").fit(df)
    calibrated = model.sample(4000)
    calibration = model.transformer_.calibration_
    model.transformer_.calibration_ = None
    raw = model.sample(4000)
    model.transformer_.calibration_ = calibration
    for col in ("bimodal", "spend"):
        ks = ks_2samp(calibrated[col], df[col]).statistic
        assert ks < 0.05, col
        assert ks < ks_2samp(raw[col], df[col]).statistic, col
    assert (calibrated["spend"] == 0).mean() == pytest.approx(0.4, abs=0.04)


def test_moment_loss_matches_standardised_moments():
    import torch

    from pyprofile.models.synth.train import MOMENT_STD_FLOOR, MomentMatcher

    gen = torch.Generator().manual_seed(0)
    data = torch.rand((200, 4), generator=gen)
    data[:, 3] = (data[:, 3] < 0.01).float()  # a rare one-hot: its scale is floored
    matcher = MomentMatcher(2.0, data)
    assert float(matcher(data, data)) == 0.0
    fake = torch.rand((50, 4), generator=gen)
    real = data[:50]
    std = data.std(0).clamp_min(MOMENT_STD_FLOOR)
    f, r = (fake - data.mean(0)) / std, (real - data.mean(0)) / std
    expected = ((f.mean(0) - r.mean(0)) ** 2).sum() + ((f.T @ f - r.T @ r) / 50).pow(2).sum()
    assert float(matcher(fake, real)) == pytest.approx(2.0 * float(expected), rel=1e-5)


def test_one_backward_gives_critic_and_generator_their_own_gradients(fitted):
    """The shared step reverses the critic's gradient into the generator: one backward gives
    the critic the gradient of critic(fake) - critic(real) and the generator that of
    -critic(fake) + condition loss, as two separate backward passes would."""
    import contextlib

    import torch

    from pyprofile.models.synth.train import _noise, condition_loss, draw_batch, train_step

    nets = fitted.nets_
    g, d = nets.generator, nets.discriminator
    data = torch.as_tensor(fitted.transformer_.transform(customers()))
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    cond, forced, cols, cats, real = batch = draw_batch(fitted.sampler_, rng, nets, data, 100)
    sgd = (torch.optim.SGD(d.parameters(), lr=0.0), torch.optim.SGD(g.parameters(), lr=0.0))
    common = dict(tau=0.2, moments=None, generator=gen, autocast=contextlib.nullcontext)
    d.eval()  # no dropout: both computations see the same critic
    try:
        state = gen.get_state()
        loss_d, gp, loss_g, _, _ = train_step(
            nets, sgd, batch, gp_weight=10, penalty=False, **common
        )
        shared_d = [p.grad.clone() for p in d.parameters()]
        shared_g = [p.grad.clone() for p in g.parameters()]
        gen.set_state(state)
        fake, raw, _ = g(_noise(nets, cond, gen), tau=0.2, generator=gen, forced=forced)
        fake_in, real_in = torch.cat([fake, cond], 1), torch.cat([real, cond], 1)
        critic_loss = d(fake_in.detach()).mean() - d(real_in).mean()
        own_d = torch.autograd.grad(critic_loss, list(d.parameters()))
        adversarial = -d(fake_in).mean()
        gen_loss = adversarial + condition_loss(nets, raw, cols, cats)
        own_g = torch.autograd.grad(gen_loss, list(g.parameters()))
    finally:
        d.train()
    assert float(gp) == 0.0
    assert float(loss_d) == pytest.approx(float(critic_loss.detach()), rel=1e-5)
    assert float(loss_g) == pytest.approx(float(adversarial.detach()), rel=1e-5)
    for shared, own in ((shared_d, own_d), (shared_g, own_g)):
        for a, b in zip(shared, own, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    gp = train_step(nets, sgd, batch, gp_weight=10, penalty=True, **common)[1]
    assert float(gp) > 0.0


def _wide(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Integer-coded survey answers: 12 columns of 5 codes with rare codes, pairwise related."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    cols = {}
    for j in range(12):
        score = latent + rng.normal(scale=1.0, size=n)
        cols[f"q{j}"] = np.digitize(score, [-2.0, -0.8, 0.8, 2.0]).astype(np.int64)
    return pd.DataFrame(cols)


def test_category_calibration_matches_real_frequencies():
    """After a short training the argmax outputs miss rare codes; the fitted offsets bring
    every code's sampled frequency to the real one (within sampling noise)."""
    df = _wide()
    kwargs = {"epochs": 3, "batch_size": 100, "select_best": False, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = Synthesizer(calibrate_categories=False, **kwargs).fit(df)
        calibrated = Synthesizer(**kwargs).fit(df)

    def worst(model):
        sample = model.sample(4000, random_state=1)
        gaps = [
            np.abs(
                sample[c].value_counts(normalize=True).reindex(range(5), fill_value=0)
                - df[c].value_counts(normalize=True).reindex(range(5), fill_value=0)
            ).max()
            for c in df
        ]
        return max(gaps)

    assert worst(calibrated) < 0.03
    assert worst(plain) > 2 * worst(calibrated)
    bias = calibrated.nets_.generator.bias
    assert bias.abs().sum() > 0 and plain.nets_.generator.bias.abs().sum() == 0
    loaded = Synthesizer.from_artifact(calibrated.to_artifact())
    assert loaded.sample(50).equals(calibrated.sample(50))


@pytest.mark.parametrize(("max_steps", "calls"), [(None, 5 * 4), (10, 5 * 2), (3, 5 * 1)])
def test_training_takes_at_most_max_steps(data, monkeypatch, max_steps, calls):
    """400 rows in batches of 100 are 4 steps an epoch; a budget cuts every epoch alike (at
    least one step each), so the cost stops growing with the table."""
    import pyprofile.models.synth.train as train_module

    counted = []
    step = train_module.train_step

    def counting(*args, **kwargs):
        counted.append(1)
        return step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(
            epochs=5, batch_size=100, max_steps=max_steps, select_best=False, device="cpu"
        ).fit(data[["age", "income", "region"]])
    assert len(counted) == calls
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4, 5]


def test_tables_over_max_rows_are_learnt_from_a_stratified_sample(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(epochs=1, batch_size=50, max_rows=150, device="cpu").fit(
            data, label="has_purchased"
        )
    assert model.n_training_rows_ == 150
    # the label's rate in the sample is the table's (to one row), and samples reproduce it
    rate = model.sample(1500)["has_purchased"].mean()
    assert rate == pytest.approx(data["has_purchased"].mean(), abs=1 / 150)
    with pytest.raises(InputError, match="max_rows"):
        Synthesizer(epochs=1, max_rows=5).fit(data)
    with pytest.raises(InputError, match="max_steps"):
        Synthesizer(epochs=1, max_steps=0).fit(data)


def test_batch_grows_with_the_category_levels_unless_given():
    """``batch_size=None``: 500 rows for a table with few category levels, 1,000 once its
    category columns have 100 levels together; an explicit batch is kept, and survives the
    artifact."""
    rng = np.random.default_rng(0)
    narrow = pd.DataFrame({"a": rng.choice(list("xyz"), 400), "b": rng.normal(size=400)})
    wide = pd.DataFrame({f"q{i}": rng.integers(0, 9, 400).astype(str) for i in range(12)})
    fast = {"epochs": 1, "select_best": False}
    assert Synthesizer(**fast).fit(narrow).batch_size_ == 500
    model = Synthesizer(**fast).fit(wide)  # 12 columns x 9 levels = 108 levels
    assert model.batch_size_ == 1000
    assert Synthesizer.from_artifact(model.to_artifact()).batch_size_ == 1000
    assert Synthesizer(**fast, batch_size=200).fit(wide).batch_size_ == 200
