"""Segmentation benchmark: recovery of the demo's hidden customer types, and timings.

Quality (demo warehouse, default size): adjusted Rand index (ARI) of the learned segments
against ``demo_truth.customer_types`` (read here only, never by the features), for several
model seeds, next to k-means on the raw scaled features (scikit-learn ``StandardScaler`` +
``KMeans``, the reference, with the true k and with k chosen like ours).

Timings: the full flow (``run_segmentation``) at 10k customers and on a 1M-row feature table,
and predict on 1M customers with the persisted SQL macro vs Python, both timed in one run
(the 1M table is the 10k demo features replicated 100x with new ids: a timing workload, not
a quality one).

    nice -n 10 python benchmarks/bench_segment.py --db /tmp/bench_segment.duckdb
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from pyprofile.flows.segmentation import DEFAULT_EXCLUDE, run_segmentation
from pyprofile.models.segment import Segmenter
from pyprofile.warehouse import Warehouse, quote

FEATURES = "features.customer_features"


def build(db: Path, customers: int, seed: int) -> None:
    exe = shutil.which("pyprofile") or "pyprofile"
    subprocess.run(
        [exe, "demo-data", "--db", str(db), "--customers", str(customers), "--seed", str(seed)],
        check=True,
        capture_output=True,
    )
    subprocess.run([exe, "features", "--db", str(db)], check=True, capture_output=True)


def raw_kmeans(frame: pd.DataFrame, k: int, seed: int) -> tuple[np.ndarray, float]:
    """Reference: k-means on all raw features, standardised (one-hot categoricals)."""
    data = frame.drop(columns=["customer_id"]).select_dtypes(exclude=["datetime", "datetimetz"])
    num = data.select_dtypes(include=["number", "bool"]).astype(float)
    num = num.loc[:, num.std() > 0]
    cat = pd.get_dummies(data.select_dtypes(include=["object", "string"]), dummy_na=True)
    x = np.hstack([num.fillna(num.median()).to_numpy(), cat.to_numpy(float)])
    x = StandardScaler().fit_transform(x)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return labels, float(silhouette_score(x, labels, sample_size=5000, random_state=0))


def quality(db: Path, seeds: list[int]) -> None:
    wh = Warehouse.open(db)
    frame = wh.read(FEATURES).to_pandas().sort_values("customer_id", ignore_index=True)
    truth = (
        wh.read("demo_truth.customer_types")
        .to_pandas()
        .set_index("customer_id")
        .reindex(frame["customer_id"])["customer_type"]
        .to_numpy()
    )
    n_types = len(set(truth))
    print(f"\n## Quality on {len(frame):,} demo customers ({n_types} hidden types)\n")
    print(
        "| seed | kept | k | ARI | silhouette (own space) | AE k=6 ARI | our k-means path (k) ARI "
        "| raw k-means k=6 ARI | raw k-means same k ARI | fit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        t0 = time.perf_counter()
        summary = run_segmentation(wh, random_state=seed, match_previous=False)
        fit_s = time.perf_counter() - t0
        segs = wh.read("ml.customer_segments").to_pandas().set_index("customer_id")
        ari = adjusted_rand_score(truth, segs.loc[frame["customer_id"], "segment_id"])
        k = summary["k"]
        sil = summary["comparison"][summary["method"]]["silhouette"]
        exclude = tuple(DEFAULT_EXCLUDE) + ("as_of_date", "first_order_date", "last_order_date")
        ae6 = Segmenter(k=n_types, method="autoencoder", exclude=exclude, random_state=seed)
        km = Segmenter(method="kmeans", exclude=exclude, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ari_ae6 = adjusted_rand_score(truth, ae6.fit_predict(frame))
            ari_km = adjusted_rand_score(truth, km.fit_predict(frame))
        raw6, _ = raw_kmeans(frame, n_types, seed)
        rawk, _ = raw_kmeans(frame, k, seed)
        print(
            f"| {seed} | {summary['method']} | {k} | {ari:.3f} | {sil:.3f} | {ari_ae6:.3f} | "
            f"{ari_km:.3f} ({km.k_}) | {adjusted_rand_score(truth, raw6):.3f} | "
            f"{adjusted_rand_score(truth, rawk):.3f} | {fit_s:.1f} |",
            flush=True,
        )
    wh.close()


def large(db: Path, big: Path, copies: int, reuse: bool) -> None:
    from pyprofile.warehouse.functions import publish_functions, segment_functions
    from pyprofile.warehouse.registry import load_model

    if not (reuse and big.exists()):
        shutil.copy(db, big)
    wh = Warehouse.open(big)
    if not (reuse and wh.exists("ml.customer_segments")):
        wh.execute(
            f"create or replace table features.customer_features as "
            f"select f.* replace (f.customer_id || '-' || c::varchar as customer_id) "
            f"from {FEATURES} f, range({copies}) r(c)"
        )
    n = wh.count(FEATURES)
    print(f"\n## Timings on {n:,} customers (10k demo features x {copies})\n")
    if reuse and wh.exists("ml.customer_segments"):
        print("- (reusing the model fitted by an earlier run on this table)")
    else:
        t0 = time.perf_counter()
        summary = run_segmentation(wh, random_state=0, match_previous=False)
        print(
            f"- full flow (read, fit on a 200k-row sample, score all, personas, write, macro): "
            f"{time.perf_counter() - t0:.1f} s (k={summary['k']}, kept {summary['method']})"
        )
    seg = Segmenter.from_artifact(load_model(wh, "segmenter").artifact)
    publish_functions(wh, segment_functions(seg))
    t0 = time.perf_counter()
    wh.execute(
        f"create or replace temp table sql_bulk as select customer_id, segment_id "
        f"from ml.segment_table('{FEATURES}')"
    )
    bulk_s = time.perf_counter() - t0
    args = ", ".join(quote(c) for c in seg.feature_names_in_)
    t0 = time.perf_counter()
    wh.execute(
        f"create or replace temp table sql_scored as select customer_id, "
        f"ml.segment_of({args}) as segment_id from {FEATURES}"
    )
    sql_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = wh.read(FEATURES, ["customer_id", *seg.feature_names_in_]).to_pandas()
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    py = seg.predict(frame)
    py_s = time.perf_counter() - t0

    def aligned(table: str) -> np.ndarray:
        got = wh.query(f"select customer_id, segment_id from {table}").to_pandas()
        return got.set_index("customer_id").loc[frame["customer_id"], "segment_id"].to_numpy()

    sql, bulk = aligned("sql_scored"), aligned("sql_bulk")
    print(f"- predict {n:,} rows, SQL macro ml.segment_of (in DuckDB, into a table): {sql_s:.2f} s")
    print(
        f"- predict {n:,} rows, Python Segmenter.predict (float64): {py_s:.2f} s "
        f"(+ {read_s:.2f} s to read the features into pandas)"
    )
    print(f"- predict {n:,} rows, SQL table macro ml.segment_table (into a table): {bulk_s:.2f} s")
    print(
        f"- rows where SQL and Python disagree: {int((sql != py).sum())} (scalar macro), "
        f"{int((bulk != py).sum())} (table macro) of {n:,}"
    )
    wh.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench_segment.duckdb"))
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--demo-seed", type=int, default=42)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--copies", type=int, default=100, help="0 skips the 1M timings")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--reuse-large", action="store_true", help="time predict only")
    args = parser.parse_args()
    if args.rebuild or not args.db.exists():
        t0 = time.perf_counter()
        build(args.db, args.customers, args.demo_seed)
        print(f"built demo warehouse {args.db} in {time.perf_counter() - t0:.1f} s")
    if args.seeds:
        quality(args.db, [int(s) for s in args.seeds.split(",")])
    if args.copies:
        big = args.db.with_name(args.db.stem + "_large.duckdb")
        large(args.db, big, args.copies, args.reuse_large)


if __name__ == "__main__":
    main()
