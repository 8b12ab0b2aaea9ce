"""Differentially private synthesizer: the budget, the private summary, per-row clipping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from pyprofile.errors import InputError
from pyprofile.models.synth import Synthesizer, dp, dp_train
from pyprofile.models.synth.transformer import DataTransformer

pytest.importorskip("opacus")


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(50, 10, n)
    spend = np.exp(rng.normal(4, 1, n))
    spend[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "a": a,
            "b": a * 2 + rng.normal(0, 5, n),
            "plan": np.where(a > 50, "gold", "basic"),
            "spend": spend,
            "churn": rng.random(n) < 0.3,
        }
    )


def test_budget_spends_exactly_epsilon_and_matches_opacus_calibration():
    from opacus.accountants.utils import get_noise_multiplier

    budget = dp.plan(3.0, 1e-5, 0.05, 2000)
    assert 2.997 <= budget.spent() <= 3.0
    # the summary alone spends its share
    assert dp.spent([(budget.summary_noise, 1.0, 2)], 0.5e-5) == pytest.approx(0.6, rel=1e-3)
    # DP-SGD gets less than the whole budget, more than what is left after the summary's share
    alone, rest = (
        get_noise_multiplier(
            target_epsilon=e,
            target_delta=0.5e-5,
            sample_rate=0.05,
            steps=2000,
            epsilon_tolerance=1e-3,
        )
        for e in (3.0, 2.4)
    )
    assert alone < budget.sgd_noise < rest
    assert dp.plan(10.0, 1e-5, 0.05, 2000).sgd_noise < budget.sgd_noise
    with pytest.raises(InputError, match="epsilon must be a positive"):
        dp.plan(0.0, 1e-5, 0.05, 10)


def test_summary_releases_no_rare_category_and_true_quantiles_with_little_noise():
    col = pa.chunked_array([["a"] * 500 + ["b"] * 300 + ["only-one-row"]])
    summary = dp.PrivateSummary(1.0, 1e-5, np.random.default_rng(0))
    summary.bind(n_columns=5, n_numeric=2)
    for _ in range(50):
        values, counts = summary.categories(col)
        assert values == ["a", "b"]
        assert abs(counts[0] - 500) < 15 and abs(counts[1] - 300) < 15
    x = np.random.default_rng(1).lognormal(3, 1, 50_000)
    x[:5000] = np.nan
    quiet = dp.PrivateSummary(1e-3, 1e-5, np.random.default_rng(0))
    quiet.bind(1, 1)
    knots, null_share = quiet.numeric(x, "float")
    assert null_share == pytest.approx(0.1, abs=1e-3)
    valid = x[~np.isnan(x)]
    for level in (0.1, 0.5, 0.9):
        true = np.quantile(valid, level)
        assert knots[int(level * (len(knots) - 1))] == pytest.approx(true, rel=0.08)


def test_point_masses_come_back_as_point_masses():
    rng = np.random.default_rng(4)
    share = np.where(rng.random(20_000) < 0.6, 0.0, rng.random(20_000))  # 60 % exactly 0
    share[rng.random(20_000) < 0.1] = 1.0  # and 10 % exactly 1: a share of all
    visits = rng.poisson(1.2, 20_000).astype(float)
    quiet = dp.PrivateSummary(1e-3, 1e-5, np.random.default_rng(0))
    quiet.bind(2, 2)
    knots, _ = quiet.numeric(share, "float")
    levels = np.linspace(0, 1, len(knots))
    assert (knots[levels < (share == 0).mean() - 0.01] == 0).all()
    assert (knots[levels > 1 - (share == 1).mean() + 0.01] == 1).all()
    knots, _ = quiet.numeric(visits, "int")
    decoded = np.round(np.interp(rng.random(50_000), levels, knots))
    for k in range(4):  # every count keeps its share (cells of one unit centred on it)
        assert (decoded == k).mean() == pytest.approx((visits == k).mean(), abs=0.01)


def test_timestamps_of_whole_days_come_back_at_midnight():
    rng = np.random.default_rng(5)
    day = pd.Timestamp("2024-01-01").value // 1000
    df = _table(800)
    df["last_order"] = pd.to_datetime(day + rng.integers(0, 400, 800) * dp.DAY_US, unit="us")
    df["seen_at"] = pd.to_datetime(day + rng.integers(0, 400 * dp.DAY_US, 800), unit="us")
    synth = Synthesizer(epochs=1, batch_size=50, epsilon=10.0, threads=1).fit(df, label="churn")
    out = synth.sample(500)
    assert (out["last_order"].dt.normalize() == out["last_order"]).all()
    assert (out["seen_at"].dt.normalize() != out["seen_at"]).mean() > 0.9


def test_a_spread_column_under_heavy_noise_keeps_its_range():
    x = np.random.default_rng(6).lognormal(4, 2, 2400)  # spread over many coarse cells
    loud = dp.PrivateSummary(35.0, 1e-5, np.random.default_rng(0))
    loud.bind(48, 40)  # 2,400 rows, 48 columns, epsilon 1: no single cell clears its bar
    hidden = 0
    for seed in range(30):
        loud.rng = np.random.default_rng(seed)
        released = loud.numeric(x, "float")
        if released is None:  # the noise hides the values: the column is left out
            hidden += 1
            continue
        knots = released[0]
        assert knots[0] >= 0 and knots[-1] < 50 * x.max()  # never a noise cell at 1e15
        assert x.min() / 50 < np.median(knots) < 50 * np.median(x)
    assert hidden < 30


def test_columns_the_noise_hides_are_left_out_and_a_table_all_hidden_is_refused():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "steady": np.full(1000, 5.0),
            "wild": rng.lognormal(0, 6, 1000) * rng.choice([-1, 1], 1000),
        }
    )
    # a seeded summary (a private fit's is secret): this noise hides the spread column only
    t = DataTransformer().fit(df, private=dp.PrivateSummary(80.0, 1e-5, np.random.default_rng(0)))
    assert t.excluded_ == {"wild": "its values are hidden by the privacy noise (too few rows)"}
    assert t.numeric_ == ["steady"] and t.schema_.names == ["steady"]
    assert t.inverse_transform(np.zeros((3, 1)), np.zeros((3, 0), int)).column_names == ["steady"]
    with pytest.raises(InputError, match="the privacy noise hides every column"):
        DataTransformer().fit(
            df[["wild"]], private=dp.PrivateSummary(300.0, 1e-5, np.random.default_rng(0))
        )


def test_dates_stay_in_their_window_whatever_the_noise():
    days = np.random.default_rng(2).integers(19_000, 19_730, 3000).astype(float)  # 2022-2024
    loud = dp.PrivateSummary(30.0, 1e-5, np.random.default_rng(0))
    loud.bind(20, 10)
    for _ in range(20):
        released = loud.numeric(days, "date")
        if released is not None:  # None: hidden by the noise, left out
            knots = released[0]
            assert dp.DATE_WINDOW[0] <= knots[0] <= knots[-1] <= dp.DATE_WINDOW[1]
    quiet = dp.PrivateSummary(1e-3, 1e-5, np.random.default_rng(0))
    quiet.bind(1, 1)
    knots, _ = quiet.numeric(days, "date")
    assert abs(knots[500] - np.median(days)) < 30  # a month, out of a two-year range


def _step(synth, clip, noise_multiplier=0.0):
    return dp_train.PrivateStep(
        nets=synth.nets_,
        data=torch.zeros((100, synth.transformer_.output_dim_)),
        codes=np.zeros((100, len(synth.transformer_.discrete_)), np.int64),
        sampler=synth.sampler_,
        config=synth._config(),
        noise_multiplier=noise_multiplier,
        clip=clip,
        rng=np.random.default_rng(0),
        noise=torch.Generator().manual_seed(0),
        generator=torch.Generator().manual_seed(0),
    )


def _reference_gradient(disc, real, fake, alpha, gp_weight, clip, expected):
    """Per-row WGAN-GP gradients by plain autograd, one row at a time, clipped and averaged."""
    total = [torch.zeros_like(p) for p in disc.parameters()]
    for r, f, a in zip(real, fake, alpha, strict=True):
        mix = (a * r + (1 - a) * f)[None].requires_grad_(True)
        (slope,) = torch.autograd.grad(disc(mix).sum(), mix, create_graph=True)
        gp = (slope.norm() - 1) ** 2
        loss = disc(f[None]).sum() - disc(r[None]).sum() + gp_weight * gp
        grads = torch.autograd.grad(loss, list(disc.parameters()))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return [t / expected for t in total]


@pytest.mark.parametrize("clip", [1e6, 0.05])
def test_private_gradient_is_the_mean_of_clipped_per_row_gradients(clip):
    synth = Synthesizer(epochs=1, batch_size=50, epsilon=5.0, threads=1).fit(
        _table(), label="churn"
    )
    step = _step(synth, clip)
    width = synth.transformer_.output_dim_ + synth.sampler_.dim
    gen = torch.Generator().manual_seed(3)
    real, fake = torch.randn((7, width), generator=gen), torch.randn((7, width), generator=gen)
    alpha = torch.rand((7, 1), generator=gen)
    grads = step.private_gradient(real, fake, alpha)
    disc = synth.nets_.discriminator
    reference = _reference_gradient(disc, real, fake, alpha, step.config.gp_weight, clip, 50)
    for (name, _), ref in zip(disc.named_parameters(), reference, strict=True):
        torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=1e-6)
    if clip < 1:  # clipped: no row moves the sum by more than clip
        assert float(torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))) * 50 <= 7 * clip


def test_private_fit_spends_the_budget_keeps_it_and_is_not_repeatable_by_seed():
    df = _table()
    synth = Synthesizer(epochs=3, batch_size=50, epsilon=3.0, threads=1).fit(df, label="churn")
    assert 2.997 <= synth.epsilon_ <= 3.0
    assert synth.delta_ == pytest.approx(min(1e-5, 1 / (10 * len(df))))
    assert synth.best_epoch_ == 3  # no checkpoint chosen on real rows
    # nothing computed on real rows without noise is kept: not the critic's losses
    assert [r["loss_d"] for r in synth.history_] == [None] * 3
    assert all(r["gradient_penalty"] is None for r in synth.history_)
    out = synth.sample(400)
    assert list(out.columns) == list(df.columns) and len(out) == 400
    # the label rate follows the released counts, not the exact real one
    assert 0.1 < out["churn"].mean() < 0.5  # 0.3 real; the released count's noise: sd ~0.05
    again = Synthesizer.from_artifact(synth.to_artifact())
    assert (again.epsilon_, again.delta_) == (synth.epsilon_, synth.delta_)
    pd.testing.assert_frame_equal(
        again.sample(50, random_state=1), synth.sample(50, random_state=1)
    )
    other = Synthesizer(epochs=3, batch_size=50, epsilon=3.0, threads=1).fit(df, label="churn")
    assert not other.sample(50, random_state=1).equals(synth.sample(50, random_state=1))
    plain = Synthesizer(epochs=1, batch_size=50, threads=1).fit(df)
    assert plain.epsilon_ is None


def test_private_encoding_of_a_row_does_not_depend_on_the_other_rows():
    df = _table()
    synth = Synthesizer(epochs=1, batch_size=50, epsilon=3.0, threads=1).fit(df, label="churn")
    t = synth.transformer_
    whole = t.transform(pa.Table.from_pandas(df), random_state=0)
    alone = np.concatenate(
        [t.transform(pa.Table.from_pandas(df.iloc[[i]]), random_state=0) for i in range(5)]
    )
    # numeric values of continuous columns (no ties): the same with or without the others
    np.testing.assert_allclose(alone[:, : t.n_values_], whole[:5, : t.n_values_], atol=1e-6)


def test_a_category_held_by_few_rows_is_never_released_and_never_sampled():
    df = _table(800)
    df.loc[:2, "plan"] = "secret-plan"
    synth = Synthesizer(epochs=1, batch_size=50, epsilon=3.0, threads=1).fit(df, label="churn")
    assert "secret-plan" not in synth.transformer_.columns_[2]["categories"]
    assert "secret-plan" not in set(synth.sample(2000)["plan"])


def test_the_report_shows_the_privacy_spent_from_the_quality_table():
    from pyprofile.report.sections import quality_tiles

    rows = [
        ("overall", "QualityScore", 0.9),
        ("privacy", "dp_epsilon", 2.9999),
        ("privacy", "dp_delta", 1e-5),
    ]
    q = pd.DataFrame(rows, columns=["metric_group", "metric", "score"])
    assert dict(quality_tiles(q))["differential privacy"] == "ε = 3, δ = 1e-05"
    assert dict(quality_tiles(q.iloc[:1]))["differential privacy"] == "none"
