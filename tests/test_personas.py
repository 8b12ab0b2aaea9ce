"""Personas: every fact in the text holds in the data (numbers recomputed independently)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pyprofile.errors import InputError
from pyprofile.models.dictionary import segment_sentence, value
from pyprofile.models.personas import build_profiles, fmt, pct


def base(n_per: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three designed segments: lapsed low spenders, frequent big spenders, discount browsers."""
    rng = np.random.default_rng(seed)
    seg = np.repeat([0, 1, 2], n_per)
    n = len(seg)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "recency_days": np.select(
                [seg == 0, seg == 1], [rng.normal(400, 30, n), rng.normal(10, 3, n)], 60.0
            ),
            "order_count": np.select([seg == 1], [rng.poisson(20, n)], rng.poisson(2, n)),
            "monetary_amount": np.where(seg == 1, rng.gamma(5, 400, n), rng.gamma(2, 30, n)),
            "discount_share": np.where(seg == 2, rng.uniform(0.5, 0.9, n), rng.uniform(0, 0.1, n)),
            "category_books_share": np.where(seg == 0, 0.7, 0.1),
            "category_toys_share": np.where(seg == 0, 0.3, 0.9),
            "rfm_segment": np.where(seg == 1, "Champions", np.where(seg == 0, "At Risk", "Other")),
            "age": np.where(seg == 1, 50, 30) + rng.integers(-5, 6, n),
            "gender": rng.choice(["female", "male"], n, p=[0.7, 0.3]),
        }
    )
    frame.loc[5, "rfm_segment"] = None
    segments = pd.DataFrame({"customer_id": frame["customer_id"], "segment_id": seg})
    return frame, segments


@pytest.fixture(scope="module")
def profiles():
    frame, segments = base()
    return frame, segments, build_profiles(frame, segments)


def test_sizes_shares_and_numbers(profiles):
    frame, segments, out = profiles
    assert out["segment_id"].tolist() == [0, 1, 2]
    assert out["size"].tolist() == [200, 200, 200]
    np.testing.assert_allclose(out["share"], [1 / 3] * 3)
    for row in out.itertuples():
        mask = segments["segment_id"].to_numpy() == row.segment_id
        # Independent z and lift of the key feature columns.
        for col in ["recency_days", "order_count", "monetary_amount"]:
            x = frame[col].astype(float)
            z = (x[mask].mean() - x.mean()) / x.std(ddof=0)
            assert getattr(row, f"z_{col}") == pytest.approx(z)
            assert getattr(row, f"mean_{col}") == pytest.approx(x[mask].mean())
        facts = json.loads(row.facts)
        for top in facts["top_features"]:
            x = frame[top["feature"]].astype(float)
            assert top["lift"] == pytest.approx(x[mask].mean() / x.mean())


def test_description_mentions_only_true_facts(profiles):
    frame, segments, out = profiles
    for row in out.itertuples():
        mask = segments["segment_id"].to_numpy() == row.segment_id
        text = row.description
        assert text.startswith(f"{row.segment_name}: {mask.sum():,} customers ({pct(mask.mean())}")
        # Every feature sentence, with both numbers recomputed from the data, in plain words.
        facts = json.loads(row.facts)
        assert facts["top_features"], text
        for top in facts["top_features"]:
            x = frame[top["feature"]].astype(float)
            sentence = segment_sentence(top["feature"], x[mask].mean(), x.mean())
            assert sentence in text
            assert "(everyone: " in sentence and top["feature"] not in text
        assert not re.search(r"[a-z]+_[a-z]+", text), text  # no column name anywhere
        rfm = frame.loc[mask, "rfm_segment"]
        mode = rfm.value_counts().idxmax()
        assert f"Most common RFM segment: {mode} ({pct((rfm == mode).mean())})." in text
        fav = frame.loc[mask, ["category_books_share", "category_toys_share"]].mean()
        top_cat = fav.idxmax().removeprefix("category_").removesuffix("_share")
        assert f"Favourite categories: {top_cat} ({pct(fav.max())} of spend" in text
        assert f"median age {fmt(frame.loc[mask, 'age'].median())}" in text
        gender = frame.loc[mask, "gender"].value_counts()
        assert f"gender mostly {gender.idxmax()} ({pct(gender.max() / mask.sum())})" in text


def test_names_follow_the_data(profiles):
    _, _, out = profiles
    names = dict(zip(out["segment_id"], out["segment_name"], strict=True))
    assert "lapsed" in names[0].lower()
    assert "frequent" in names[1].lower() or "high-spending" in names[1].lower()
    assert "discount-driven" in names[2].lower()
    assert len(set(names.values())) == 3
    assert out.loc[out.segment_id == 1, "dominant_rfm_segment"].item() == "Champions"
    assert out.loc[out.segment_id == 0, "favourite_categories"].item() == "books, toys"


def test_deterministic():
    frame, segments = base()
    a = build_profiles(frame, segments)
    pd.testing.assert_frame_equal(a, build_profiles(frame, segments))
    # Row order changes sums in the last bit only: same names, same text.
    b = build_profiles(frame.sample(frac=1, random_state=1), segments)
    pd.testing.assert_frame_equal(a.drop(columns="facts"), b.drop(columns="facts"))


def test_uniform_segment_is_typical_and_duplicate_names_disambiguated():
    frame, _ = base()
    rng = np.random.default_rng(0)
    random_segments = pd.DataFrame(
        {"customer_id": frame["customer_id"], "segment_id": rng.integers(0, 2, len(frame))}
    )
    out = build_profiles(frame, random_segments)
    assert out["segment_name"].tolist() == ["Typical customers (0)", "Typical customers (1)"]
    assert all("No feature differs much" in d for d in out["description"])


def test_bad_input():
    frame, segments = base()
    with pytest.raises(InputError, match="segments \\(600 rows\\) lacks column\\(s\\) segment_id"):
        build_profiles(frame, segments.drop(columns=["segment_id"]))
    other = segments.assign(customer_id="X" + segments["customer_id"])
    with pytest.raises(InputError, match="no customer of segments"):
        build_profiles(frame, other)


def test_mostly_null_feature_does_not_distinguish():
    frame, segments = base()
    # Segment 2: only 10% have a return rate, and those are extreme.
    rate = np.where(segments["segment_id"] == 2, np.nan, 0.05)
    rate[400:420] = 1.0
    out = build_profiles(frame.assign(return_rate=rate), segments)
    facts = json.loads(out.loc[out.segment_id == 2, "facts"].item())
    assert facts["features_z"]["return_rate"] == 0.0
    assert "return" not in out.loc[out.segment_id == 2, "segment_name"].item().lower()


def test_words_have_units_and_the_shop_currency():
    frame, segments = base()
    out = build_profiles(frame, segments, currency="€")
    text = out.loc[out.segment_id == 1, "description"].item()
    spend = frame.loc[segments["segment_id"] == 1, "monetary_amount"].mean()
    assert f"spent {value('money', spend, '€')} in total on average" in text
    assert value("money", 1234.5, "€") == "€1,234" and value("money", 12.5, "EUR") == "12.50 EUR"
    assert value("days", 1.0) == "1 day" and value("share", 0.254) == "25%"
    lapsed = out.loc[out.segment_id == 0, "description"].item()
    assert "last bought " in lapsed and " days ago on average (everyone: " in lapsed


def test_technical_columns_never_name_or_describe_a_segment():
    frame, segments = base()
    # 'T' and 'frequency' repeat tenure and order count in lifetimes' form: never used in words
    twin = frame.assign(T=frame["recency_days"] * 3, frequency=frame["order_count"] - 1)
    out = build_profiles(twin, segments)
    for row in out.itertuples():
        facts = json.loads(row.facts)
        assert {t["feature"] for t in facts["top_features"]}.isdisjoint({"T", "frequency"})


def test_non_buyers_and_one_order_customers_are_named_for_it():
    rng = np.random.default_rng(4)
    n = 300
    seg = np.repeat([0, 1, 2], n)
    orders = np.select([seg == 0, seg == 1], [0, 1], rng.poisson(6, 3 * n) + 2)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(3 * n),
            "order_count": orders,
            "recency_days": np.where(orders > 0, rng.uniform(1, 300, 3 * n), np.nan),
            "session_count": rng.poisson(np.where(seg == 0, 12, 3)),
        }
    )
    segments = pd.DataFrame({"customer_id": frame["customer_id"], "segment_id": seg})
    names = build_profiles(frame, segments).set_index("segment_id")["segment_name"]
    assert names[0].startswith("Not yet buying")
    assert names[1].startswith("One-order")
    assert not names[2].startswith(("Not yet", "One-order"))
    assert len(set(names)) == 3
