"""The whole pipeline at growing sizes: wall time and peak memory per step, and model quality.

    .venv/bin/python benchmarks/bench_scale.py --customers 10000 100000 [1000000] \
        [--workdir /tmp/pyprofile-scale] [--out benchmarks/results/scale.md]

For each size: the demo warehouse (generated once, cached under --workdir), then `pyprofile run`
(``dbt build``: staging, features, the four ml steps, marts, the snapshot) in its own process
under ``/usr/bin/time -v``, so its peak RSS is the pipeline's own. Per step it records dbt's
wall time; at the end the cost ratios between consecutive sizes, and model quality read back
from the warehouse: the GAN's quality score, the segments' adjusted Rand index against the
demo's hidden customer types, the churn model's held-out ROC AUC and the recommender's
held-out NDCG@10. Appends a markdown table to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = (
    "staging",
    "features",
    "run_synthesizer",
    "run_segmentation",
    "run_scoring",
    "run_recommendations",
    "marts",
    "publish_snapshot",
)

RUN = """
import json, sys, time
from pyprofile.dbt import run_dbt
t = time.perf_counter()
run = run_dbt("build", sys.argv[1])
print("NODES " + json.dumps([[n.name, n.kind, n.seconds] for n in run.nodes]))
print("WALL " + str(time.perf_counter() - t))
"""

QUALITY = """
import json, sys
import duckdb
from sklearn.metrics import adjusted_rand_score
con = duckdb.connect(sys.argv[1], read_only=True)
def one(sql, params=()):
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None
def metric(name, key):
    raw = one("select metrics from ml.model_registry where name = ? order by trained_at desc "
              "limit 1", [name])
    return None if raw is None else json.loads(raw).get(key)
pairs = con.execute("select t.customer_type, s.segment_id from demo_truth.customer_types t "
                    "join ml.customer_segments s using (customer_id)").fetchall()
out = {
    "gan_quality": metric("synthesizer", "quality_score"),
    "segment_ari": adjusted_rand_score(*zip(*pairs)) if pairs else None,
    "segments": one("select count(distinct segment_id) from ml.customer_segments"),
    "churn_auc": metric("churn", "roc_auc"),
    "ndcg10": metric("recommender", "model_ndcg@10"),
}
print(json.dumps(out))
"""


def demo(db: Path, customers: int) -> None:
    """A fresh copy of the demo warehouse's raw tables (generated once per size)."""
    raw = db.with_name("source.duckdb")
    if not raw.exists():
        raw.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(ROOT / ".venv/bin/pyprofile"),
            "demo-data",
            "--db",
            str(raw),
            "--customers",
            str(customers),
            "--seed",
            "3",
        ]
        subprocess.run(cmd, check=True, capture_output=True)
    shutil.rmtree(db.with_suffix(".published"), ignore_errors=True)
    for old in (db, Path(f"{db}.wal")):
        old.unlink(missing_ok=True)
    shutil.copy(raw, db)


def pipeline(db: Path) -> dict:
    """`dbt build` on ``db`` in a child process under /usr/bin/time -v."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", RUN, str(db)]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    load = os.getloadavg()[1]  # other work on the machine inflates the timings: say how much
    if done.returncode != 0:
        raise SystemExit(f"pipeline failed on {db}:\n{done.stderr[-3000:]}")
    nodes = json.loads(
        next(line[6:] for line in done.stdout.splitlines() if line.startswith("NODES "))
    )
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"wall": wall, "peak_gb": peak_kb / 1024**2, "steps": step_times(nodes), "load": load}


def step_times(nodes: list) -> dict[str, float]:
    """Seconds per pipeline step: the ml models by name, the layers as sums of their models."""
    layer = {
        "staging": ("base_", "stg_", "rejected_rows"),
        "marts": ("customer_profiles", "segment_summary"),
    }
    out = dict.fromkeys(STEPS, 0.0)
    for name, kind, seconds in nodes:
        if kind != "model":
            continue
        if name in out:
            out[name] += seconds
        elif name.startswith(layer["staging"]):
            out["staging"] += seconds
        elif name in layer["marts"]:
            out["marts"] += seconds
        elif not name.startswith("run_") and name != "published_macros":
            out["features"] += seconds
    return out


def quality(db: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", QUALITY, str(db)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def report(rows: list[dict], command: str) -> str:
    lines = [
        f"\n## `{command}`\n",
        "| customers | wall (min) | peak RSS (GB) | "
        + " | ".join(STEPS)
        + " | GAN quality | segment ARI (k) | churn AUC | NDCG@10 | load (5 min) |",
        "|---" * (8 + len(STEPS)) + "|",
    ]
    for r in rows:
        q = r["quality"]
        cells = [f"{r['customers']:,}", f"{r['wall'] / 60:.1f}", f"{r['peak_gb']:.2f}"]
        cells += [f"{r['steps'][s]:.0f} s" for s in STEPS]
        cells += [
            fmt(q["gan_quality"]),
            f"{fmt(q['segment_ari'])} ({q['segments']})",
            fmt(q["churn_auc"]),
            fmt(q["ndcg10"]),
            f"{r['load']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for a, b in zip(rows, rows[1:], strict=False):
        lines.append(
            f"\n- {b['customers']:,} / {a['customers']:,} customers: time x"
            f"{b['wall'] / a['wall']:.1f}, peak memory x{b['peak_gb'] / a['peak_gb']:.1f}"
        )
    return "\n".join(lines) + "\n"


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pyprofile-scale"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.md")
    args = parser.parse_args()
    rows = []
    for n in args.customers:
        db = args.workdir / f"demo_{n}" / "demo.duckdb"
        demo(db, n)
        print(f"{n:,} customers: running the pipeline ...", flush=True)
        result = {"customers": n, **pipeline(db), "quality": quality(db)}
        print(json.dumps(result, indent=1), flush=True)
        rows.append(result)
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    with args.out.open("a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
