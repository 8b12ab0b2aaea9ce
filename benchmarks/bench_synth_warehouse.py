"""A synthetic warehouse, measured: fidelity of the dbt feature layer built on it, order-level
checks, churn TSTR vs TRTR, privacy (DCR, membership inference, copied order sequences) and
speed.

    # a whole synthetic warehouse from the 10k demo
    python benchmarks/bench_synth_warehouse.py --customers 10000 --seeds 0
    # differentially private copies (per customer) at three budgets, and the non-private one
    python benchmarks/bench_synth_warehouse.py --customers 10000 --epsilon inf 10 3 1

Every run appends one JSON line per seed to ``--log`` and prints a markdown
table. ``--db`` reuses a demo warehouse already built (``pyprofile demo-data`` + dbt staging
and features); otherwise one is generated in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def demo_warehouse(customers: int, seed: int = 42) -> Path:
    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo

    path = Path(tempfile.mkdtemp()) / "demo.duckdb"
    generate_demo(path, customers=customers, seed=seed)
    run_dbt("build", path, select=["staging", "features"])
    return path


def log(args, record: dict) -> None:
    with open(args.log, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])

    def cell(v):
        if isinstance(v, float):
            return "inf" if math.isinf(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- whole warehouse
def warehouse_row(summary: dict, label: str) -> dict:
    checks = {k: v["score"] for k, v in summary.get("order_checks", {}).items()}
    u, p, s = summary.get("utility", {}), summary.get("privacy", {}), summary.get("sequences", {})
    return {
        "run": label,
        "quality": summary.get("quality_score"),
        "shapes": summary.get("column_shapes"),
        "pairs": summary.get("column_pair_trends"),
        "order checks (mean)": float(np.nanmean(list(checks.values()))) if checks else None,
        "min check": min(checks, key=checks.get) + f" {min(checks.values()):.3f}"
        if checks
        else None,
        "TSTR": u.get("tstr_auc"),
        "TRTR": u.get("trtr_auc"),
        "TSTR/TRTR": u.get("tstr_trtr_ratio"),
        "churn rate real/syn": f"{u.get('real_label_rate', float('nan')):.3f}/"
        f"{u.get('synthetic_label_rate', float('nan')):.3f}",
        "DCR syn/hold": f"{p.get('dcr_synthetic_median', float('nan')):.3f}/"
        f"{p.get('dcr_holdout_median', float('nan')):.3f}",
        "MIA AUC": p.get("mia_auc"),
        "copied sequences": s.get("sequence_exact_copies"),
        "fit s": summary.get("fit_seconds"),
        "sample s": summary.get("sample_seconds"),
        "rows/s": summary.get("rows_per_second"),
        "dbt s": summary.get("dbt_seconds"),
    }


def bench_warehouse(args) -> None:
    from pyprofile.flows.synth_warehouse import run_synth_warehouse

    src = Path(args.db) if args.db else demo_warehouse(args.customers)
    rows = []
    for seed in args.seeds:
        for epsilon in args.epsilon:
            out = Path(tempfile.mkdtemp()) / "synthetic.duckdb"
            t0 = time.perf_counter()
            summary = run_synth_warehouse(
                src,
                out,
                epochs=args.epochs,
                random_state=seed,
                epsilon=None if math.isinf(epsilon) else epsilon,
            )
            summary["total_seconds"] = time.perf_counter() - t0
            label = f"seed {seed}, epsilon {epsilon:g}"
            log(args, {"label": label, "args": vars(args), **summary})
            rows.append(warehouse_row(summary, label))
            print(markdown(rows[-1:]), flush=True)
    print(markdown(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="a demo warehouse already built (skips generation)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--epsilon",
        type=float,
        nargs="+",
        default=[math.inf],
        help="privacy budgets per customer (inf: no differential privacy)",
    )
    parser.add_argument("--log", default="bench_synth_warehouse.jsonl")
    args = parser.parse_args()
    bench_warehouse(args)


if __name__ == "__main__":
    main()
