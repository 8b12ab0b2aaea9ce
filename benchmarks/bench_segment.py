"""Segmentation benchmark: recovery of planted customer types against plain k-means, and timings.

Quality: the flow's segments (``run_segmentation`` with its defaults: representation and k chosen
in 3..12 by criteria computed in the preprocessed-feature space) are scored by the adjusted Rand
index (ARI) against the planted types, on the demo warehouse (built with the CLI; types in
``demo_truth.customer_types``, read only here) and on generated shops of different structure
(``benchmarks/shops.py``: 3 types without events or demographics, 7 types with both, a shop of
one-order guests), three seeds each (shops: data and model seed; demo: model seed, data seed 42).
Next to it, the baseline, k-means on the same preprocessed features (log of heavy tails, robust
scaling, clipping, null indicators, one-hot categories):

* at the same k (exactly the baseline the model records in ``baseline_comparison_``, refitted
  here with ``Segmenter(method="kmeans", k=k)``, which gives the same partition);
* at its own k (the same selection rule among k-means candidates only);
* at the true number of types, and at its best k over 3..12 (an oracle: it looks at the truth).

Timings: the fit inside the flow (``metrics.fit_seconds``) at 10k customers; on a 1M-row feature
table (the 10k demo features replicated, ``--copies``), the full flow and predict with the
persisted SQL macros vs Python.

    nice -n 10 python benchmarks/bench_segment.py --db /tmp/bench_segment.duckdb --copies 0
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.shops import SHOPS, make_shop  # noqa: E402
from pyprofile.flows.publish import read_frame  # noqa: E402
from pyprofile.flows.segmentation import DEFAULT_EXCLUDE, run_segmentation  # noqa: E402
from pyprofile.models.clustering import kmeans, limit_threads  # noqa: E402
from pyprofile.models.preprocessing import apply_preprocessing  # noqa: E402
from pyprofile.models.segment import Segmenter  # noqa: E402
from pyprofile.warehouse import Warehouse, quote  # noqa: E402
from pyprofile.warehouse.registry import load_model  # noqa: E402

FEATURES = "features.customer_features"
K_RANGE = (3, 12)


def build(db: Path, customers: int, seed: int) -> None:
    exe = shutil.which("pyprofile") or "pyprofile"
    subprocess.run(
        [exe, "demo-data", "--db", str(db), "--customers", str(customers), "--seed", str(seed)],
        check=True,
        capture_output=True,
    )
    subprocess.run([exe, "features", "--db", str(db)], check=True, capture_output=True)


def warehouse(shop: str, seed: int, args: argparse.Namespace) -> tuple[Path, pd.Series]:
    """The warehouse holding the shop's feature table, and the planted type per customer."""
    if shop == "demo":
        with Warehouse.open(args.db) as wh:
            truth = wh.read("demo_truth.customer_types").to_pandas()
        return args.db, truth.set_index("customer_id")["customer_type"]
    frame, truth = make_shop(shop, args.customers, seed)
    db = args.db.with_name(f"{args.db.stem}_{shop}.duckdb")
    db.unlink(missing_ok=True)
    with Warehouse.open(db) as wh:
        wh.write(FEATURES, frame)
    return db, truth


def baselines(frame, truth, seed: int, k: int, n_types: int, recorded: dict) -> dict:
    """ARI of k-means on the preprocessed features: same k, own k, true k, best k (oracle)."""
    exclude = ("customer_id", *DEFAULT_EXCLUDE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = Segmenter(k, method="kmeans", exclude=exclude, random_state=seed).fit(frame)
        own = Segmenter(None, K_RANGE, method="kmeans", exclude=exclude, random_state=seed)
        own.fit(frame)
    if same.baseline_comparison_["chosen"] != recorded:
        print(f"  (warning: refitted baseline differs from the recorded one, seed {seed})")
    z = apply_preprocessing(frame, same.preprocessing_)
    with limit_threads(1):
        per_k = {
            kk: adjusted_rand_score(truth, kmeans(z, kk, n_init=10, seed=seed)[1])
            for kk in range(K_RANGE[0], K_RANGE[1] + 1)
        }
    best = max(per_k, key=per_k.get)
    return {
        "same": adjusted_rand_score(truth, same.predict(frame)),
        "own": adjusted_rand_score(truth, own.predict(frame)),
        "own_k": own.k_,
        "true": per_k.get(n_types, float("nan")),
        "best": per_k[best],
        "best_k": best,
    }


def run_one(shop: str, seed: int, args: argparse.Namespace) -> dict:
    db, truth_by_id = warehouse(shop, seed, args)
    with Warehouse.open(db) as wh:
        summary = run_segmentation(wh, random_state=seed, match_previous=False)
        record = load_model(wh, "segmenter")
        frame = read_frame(wh, FEATURES)
        segs = wh.read("ml.customer_segments").to_pandas().set_index("customer_id")
        profiles = wh.read("ml.segment_profiles").to_pandas()
    truth = truth_by_id.reindex(frame["customer_id"]).to_numpy()
    model = Segmenter.from_artifact(record.artifact)
    cmp = model.baseline_comparison_
    row = {
        "shop": shop,
        "seed": seed,
        "kept": summary["method"],
        "k": summary["k"],
        "ari": adjusted_rand_score(truth, segs.loc[frame["customer_id"], "segment_id"]),
        "fit_s": record.metrics["fit_seconds"],
        "sil": cmp["chosen"]["silhouette"],
        "stab": cmp["chosen"]["stability"],
        "base_sil": cmp["baseline"]["silhouette"],
        "base_stab": cmp["baseline"]["stability"],
        "names": profiles[["segment_name", "size"]].values.tolist(),
    }
    n_types = len(set(truth))
    row.update(baselines(frame, truth, seed, summary["k"], n_types, cmp["baseline"]))
    return row


def quality(args: argparse.Namespace, shops: list[str], seeds: list[int]) -> None:
    print(f"\n## Quality: ARI against the planted types ({args.customers:,} customers)\n")
    print(
        "| shop | seed | kept | k | ARI | baseline same k | baseline own k (k) | baseline true k "
        "| baseline best k (k) | silhouette / stability, chosen | baseline | fit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for shop in shops:
        for seed in seeds:
            r = run_one(shop, seed, args)
            rows.append(r)
            print(
                f"| {shop} | {seed} | {r['kept']} | {r['k']} | {r['ari']:.3f} | {r['same']:.3f} | "
                f"{r['own']:.3f} ({r['own_k']}) | {r['true']:.3f} | {r['best']:.3f} "
                f"({r['best_k']}) | {r['sil']:.3f} / {r['stab']:.3f} | {r['base_sil']:.3f} / "
                f"{r['base_stab']:.3f} | {r['fit_s']:.1f} |",
                flush=True,
            )
    summarise(pd.DataFrame(rows))


def summarise(table: pd.DataFrame) -> None:
    print("\n## Mean (range) over seeds\n")
    print(
        "| shop | ARI | baseline same k | baseline own k | baseline true k | baseline best k | k |"
    )
    print("|---|---|---|---|---|---|---|")

    def cell(s: pd.Series) -> str:
        return f"{s.mean():.3f} ({s.min():.3f}-{s.max():.3f})"

    for shop, g in table.groupby("shop", sort=False):
        ks = ", ".join(map(str, g["k"]))
        print(
            f"| {shop} | {cell(g['ari'])} | {cell(g['same'])} | {cell(g['own'])} | "
            f"{cell(g['true'])} | {cell(g['best'])} | {ks} |"
        )
    print("\n## Segment names (first seed)\n")
    for shop, g in table.groupby("shop", sort=False):
        names = "; ".join(f"{n} ({s:,})" for n, s in g.iloc[0]["names"])
        print(f"- {shop}: {names}")


def large(db: Path, big: Path, copies: int, reuse: bool) -> None:
    from pyprofile.warehouse.functions import publish_functions, segment_functions

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
    parser.add_argument("--shops", default=",".join(["demo", *SHOPS]))
    parser.add_argument("--copies", type=int, default=100, help="0 skips the 1M timings")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--reuse-large", action="store_true", help="time predict only")
    args = parser.parse_args()
    needs_demo = "demo" in args.shops.split(",") or args.copies
    if needs_demo and (args.rebuild or not args.db.exists()):
        t0 = time.perf_counter()
        build(args.db, args.customers, args.demo_seed)
        print(f"built demo warehouse {args.db} in {time.perf_counter() - t0:.1f} s")
    if args.seeds:
        quality(args, args.shops.split(","), [int(s) for s in args.seeds.split(",")])
    if args.copies:
        big = args.db.with_name(args.db.stem + "_large.duckdb")
        large(args.db, big, args.copies, args.reuse_large)


if __name__ == "__main__":
    main()
