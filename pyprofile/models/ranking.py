"""Offline evaluation of recommendations: a per-user time split and top-K ranking metrics.

Protocol: for every customer the most recent ``test_fraction`` of their interactions (by
timestamp) is held out; models train on the rest and are scored on how many of the held-out
products they rank in their top K. Relevance is binary and counts each product once per
customer; products the customer already had in training are not relevant (recommenders
exclude them), so a customer whose held-out products were all seen before is not scored.

* ``Recall@K`` = hits in the top K / number of relevant products (averaged over customers).
* ``NDCG@K`` = DCG / ideal DCG with ``DCG = sum(1 / log2(rank + 1))`` over hits, ranks from 1,
  the ideal placing ``min(K, relevant)`` hits first.
* catalogue coverage = distinct products recommended to anyone / products in the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.data import as_frame, require_columns

USER, ITEM, TIME = "customer_id", "product_id", "timestamp"


def time_split(
    interactions: Any,
    test_fraction: float = 0.2,
    *,
    user_col: str = USER,
    item_col: str = ITEM,
    time_col: str = TIME,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each customer's interactions by time: the last ``test_fraction`` is the test set.

    A customer with ``n`` interactions keeps ``max(1, floor((1 - test_fraction) * n))`` of them,
    the earliest, for training (ties on the timestamp are broken by product id, so the split is
    deterministic). Returns ``(train, test)`` with the input's columns.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    frame = as_frame(interactions, "interactions")
    require_columns(frame, [user_col, item_col, time_col], "interactions")
    order = frame.sort_values([user_col, time_col, item_col], kind="stable")
    position = order.groupby(user_col, sort=False).cumcount().to_numpy()
    size = order.groupby(user_col, sort=False)[user_col].transform("size").to_numpy()
    n_train = np.maximum(1, np.floor((1.0 - test_fraction) * size + 1e-9).astype(np.int64))
    is_train = position < n_train
    return order[is_train].reset_index(drop=True), order[~is_train].reset_index(drop=True)


def _relevant(
    test: pd.DataFrame, train: pd.DataFrame | None, user_col: str, item_col: str
) -> pd.DataFrame:
    rel = test[[user_col, item_col]].drop_duplicates()
    if train is not None and len(train):
        seen = train[[user_col, item_col]].drop_duplicates()
        rel = rel.merge(seen.assign(_seen=True), on=[user_col, item_col], how="left")
        rel = rel[rel["_seen"].isna()].drop(columns="_seen")
    return rel


def ranking_metrics(
    recommendations: Any,
    test: Any,
    k: int = 10,
    *,
    train: Any = None,
    n_catalogue: int | None = None,
    user_col: str = USER,
    item_col: str = ITEM,
    rank_col: str = "rank",
) -> dict[str, float]:
    """Recall@K, NDCG@K and catalogue coverage of ``recommendations`` against ``test``.

    ``recommendations`` has one row per (customer, rank, product), ranks starting at 1;
    ``test`` the held-out (customer, product) pairs. With ``train`` given, held-out products
    the customer already had in training are not counted as relevant. Customers with relevant
    products but no recommendations score 0; customers without relevant products are skipped.
    ``n_catalogue`` (default: the distinct products of ``train`` and ``test``) is the coverage
    denominator.
    """
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    recs = as_frame(recommendations, "recommendations")
    test_f = as_frame(test, "test")
    train_f = None if train is None else as_frame(train, "train")
    require_columns(recs, [user_col, item_col, rank_col], "recommendations")
    require_columns(test_f, [user_col, item_col], "test")
    rel = _relevant(test_f, train_f, user_col, item_col)
    if rel.empty:
        raise InputError("no relevant test interactions to evaluate against")

    top = recs[recs[rank_col] <= k][[user_col, item_col, rank_col]]
    hits = top.merge(rel, on=[user_col, item_col], how="inner")
    users = pd.Index(rel[user_col].unique())
    n_rel = rel.groupby(user_col).size().reindex(users).to_numpy()
    n_hit = hits.groupby(user_col).size().reindex(users, fill_value=0).to_numpy()
    gain = 1.0 / np.log2(hits[rank_col].to_numpy(dtype=np.float64) + 1.0)
    dcg = pd.Series(gain).groupby(hits[user_col].to_numpy()).sum()
    dcg = dcg.reindex(users, fill_value=0.0).to_numpy()
    ideal_cum = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = ideal_cum[np.minimum(n_rel, k) - 1]

    if n_catalogue is None:
        frames = [test_f[item_col]] + ([train_f[item_col]] if train_f is not None else [])
        n_catalogue = int(pd.concat(frames).nunique())
    n_recommended = int(top[item_col].nunique())
    return {
        f"recall@{k}": float(np.mean(n_hit / n_rel)),
        f"ndcg@{k}": float(np.mean(dcg / idcg)),
        "coverage": n_recommended / n_catalogue if n_catalogue else 0.0,
        "users": int(len(users)),
    }


def recall_at_k(recommended: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """Recall@K for one customer: share of the relevant products found in the top ``k``."""
    rel = set(relevant)
    if not rel:
        raise InputError("recall is undefined without relevant products")
    return len(rel.intersection(list(recommended)[:k])) / len(rel)


def ndcg_at_k(recommended: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """NDCG@K for one customer with binary relevance."""
    rel = set(relevant)
    if not rel:
        raise InputError("NDCG is undefined without relevant products")
    dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(list(recommended)[:k]) if item in rel)
    idcg = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(rel))))
    return float(dcg / idcg)
