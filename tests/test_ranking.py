"""Ranking metrics and the per-user time split against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pyprofile.errors import InputError
from pyprofile.models.ranking import ndcg_at_k, ranking_metrics, recall_at_k, time_split


def test_recall_and_ndcg_by_hand():
    recommended = ["a", "b", "c", "d"]
    relevant = ["b", "d", "e"]
    # Top 3 holds only b (rank 2): recall 1/3; DCG = 1/log2(3); ideal = 1 + 1/log2(3) + 1/2.
    assert recall_at_k(recommended, relevant, 3) == pytest.approx(1 / 3)
    dcg = 1 / math.log2(3)
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(dcg / (1 + 1 / math.log2(3) + 0.5))
    # Top 4 adds d at rank 4: DCG + 1/log2(5); ideal still three hits.
    expected = (dcg + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert ndcg_at_k(recommended, relevant, 4) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], ["x"], 10) == 1.0
    assert recall_at_k(["x", "y"], ["z"], 10) == 0.0
    with pytest.raises(InputError):
        ndcg_at_k(["a"], [], 10)


def test_ranking_metrics_frame_matches_hand_values():
    recs = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 2],
            "rank": [1, 2, 3, 1, 2, 3],
            "product_id": ["a", "b", "c", "c", "d", "e"],
        }
    )
    test = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 4],
            "product_id": ["b", "z", "c", "a", "q"],
        }
    )
    train = pd.DataFrame({"customer_id": [4, 1], "product_id": ["q", "x"]})
    out = ranking_metrics(recs, test, 2, train=train, n_catalogue=10)
    # Customer 4's only test product was seen in training: not scored. Customer 3 has no recs.
    # c1: hit b at rank 2 of {b, z}: recall 1/2, ndcg (1/log2 3) / (1 + 1/log2 3)
    # c2: hit c at rank 1 of {c}: recall 1, ndcg 1; c3: 0 and 0.
    ndcg1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert out["users"] == 3
    assert out["recall@2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["ndcg@2"] == pytest.approx((ndcg1 + 1 + 0) / 3)
    # Products in the top 2 of anyone: a, b, c, d -> 4 of 10.
    assert out["coverage"] == pytest.approx(0.4)
    # The frame version agrees with the single-customer functions.
    assert out["ndcg@2"] == pytest.approx(
        (ndcg_at_k(["a", "b"], ["b", "z"], 2) + ndcg_at_k(["c", "d"], ["c"], 2) + 0) / 3
    )
    # Arrow input gives the same numbers.
    assert ranking_metrics(pa.Table.from_pandas(recs), test, 2, train=train, n_catalogue=10) == out


def test_time_split_last_fifth_by_time():
    rows = []
    for user, n in (("u10", 10), ("u3", 3), ("u1", 1), ("u5", 5)):
        for j in range(n):
            rows.append((user, f"p{j}", n - j))  # later products have earlier timestamps
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp"])
    train, test = time_split(frame, 0.2)
    sizes = test.groupby("customer_id").size().to_dict()
    # n=10 -> 8 train / 2 test; n=3 -> floor(2.4)=2 / 1; n=5 -> 4 / 1; n=1 -> 1 / 0.
    assert sizes == {"u10": 2, "u3": 1, "u5": 1}
    assert len(train) + len(test) == len(frame)
    # The test rows are each customer's latest: the smallest j (largest timestamp).
    assert sorted(test[test.customer_id == "u10"].product_id) == ["p0", "p1"]
    latest_train = train.groupby("customer_id").timestamp.max()
    earliest_test = test.groupby("customer_id").timestamp.min()
    assert (latest_train.reindex(earliest_test.index) <= earliest_test).all()


def test_time_split_ties_are_deterministic():
    frame = pd.DataFrame(
        {"customer_id": [1] * 5, "product_id": [5, 3, 4, 1, 2], "timestamp": [0] * 5}
    )
    train, test = time_split(frame.sample(frac=1.0, random_state=1), 0.4)
    assert test.product_id.tolist() == [4, 5]
    assert train.product_id.tolist() == [1, 2, 3]


def test_bad_inputs():
    frame = pd.DataFrame({"customer_id": [1], "product_id": [1]})
    with pytest.raises(InputError, match="timestamp"):
        time_split(frame)
    with pytest.raises(InputError):
        time_split(frame.assign(timestamp=1), 1.5)
    recs = pd.DataFrame({"customer_id": [1], "rank": [1], "product_id": [1]})
    with pytest.raises(InputError, match="k must"):
        ranking_metrics(recs, frame, 0)
    with pytest.raises(InputError, match="no relevant"):
        ranking_metrics(recs, frame, 5, train=frame)
    with pytest.raises(InputError, match="expected an Arrow"):
        ranking_metrics(np.zeros(3), frame, 5)
