"""Feature-layer benchmark: dbt staging + features vs a bare DuckDB RFM GROUP BY, pandas and lifetimes.

    .venv/bin/python benchmarks/bench_features.py --customers 100000 1000000

For each size it generates the demo warehouse (once, cached under --workdir), then measures in
separate processes (so peak memory is each approach's own): the whole dbt feature layer
(`dbt run --select staging features`), a bare DuckDB RFM GROUP BY on the same orders, the RFM part
in pandas, and lifetimes' `summary_data_from_transaction_data`. Prints seconds, orders/s and peak
RSS, and appends a markdown table to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = """
import duckdb, time, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
t = time.perf_counter()
n = con.execute('''select count(*) from (
    select customer_id, max(ordered_at) as last_at, count(*) as orders, sum(amount) as spend
    from raw.orders group by customer_id)''').fetchall()[0][0]
print(json.dumps({"seconds": time.perf_counter() - t, "rows": n}))
"""

PANDAS = """
import duckdb, time, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
t0 = time.perf_counter()
df = con.sql("select customer_id, ordered_at, amount::double amount, status "
             "from staging.stg_shop__orders").df()
t = time.perf_counter()
df = df[~df.status.isin(["cancelled", "returned"])]
as_of = df.ordered_at.max().normalize()
g = df.groupby("customer_id")
rfm = g.agg(last=("ordered_at", "max"), orders=("amount", "size"), spend=("amount", "sum"))
rfm["recency_days"] = (as_of - rfm["last"].dt.normalize()).dt.days
print(json.dumps({"seconds": time.perf_counter() - t, "load_seconds": t - t0, "rows": len(rfm)}))
"""

LIFETIMES = """
import duckdb, time, json, sys
from lifetimes.utils import summary_data_from_transaction_data
con = duckdb.connect(sys.argv[1], read_only=True)
t0 = time.perf_counter()
df = con.sql("select customer_id, ordered_at, amount::double amount "
             "from staging.stg_shop__orders where status not in ('cancelled', 'returned')").df()
t = time.perf_counter()
s = summary_data_from_transaction_data(df, "customer_id", "ordered_at",
    monetary_value_col="amount", observation_period_end=df.ordered_at.max(), freq="D")
print(json.dumps({"seconds": time.perf_counter() - t, "load_seconds": t - t0, "rows": len(s)}))
"""


def run_child(code: str, db: Path) -> tuple[dict, float]:
    """Run a Python snippet in a child; return its JSON result and its own peak RSS (MiB)."""
    wrapper = (
        "import resource, runpy, sys\n"
        f"exec({code!r})\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, str(db)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    lines = out.stdout.strip().splitlines()
    peak = float(lines[-1].split()[1])
    return json.loads(lines[-2]), peak


def dbt_features(db: Path) -> tuple[dict, float]:
    """Wall seconds, SQL seconds (sum of feature-model times) and peak RSS of the dbt feature layer."""
    code = (
        "import sys, json, time\n"
        "from pyprofile.dbt import run_dbt\n"
        "t = time.perf_counter()\n"
        "run = run_dbt('run', sys.argv[1], select=['staging', 'features'])\n"
        "sql = sum(n.seconds for n in run.nodes)\n"
        "rfm = sum(n.seconds for n in run.nodes if n.name == 'feat_customer__rfm')\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'sql_seconds': sql, "
        "'rfm_seconds': rfm, 'nodes': {n.name: n.seconds for n in run.nodes}}))\n"
    )
    res, peak = run_child(code, db)
    return res, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pyprofile-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "features.md")
    parser.add_argument("--skip-lifetimes-above", type=int, default=20_000_000)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.customers:
        db = args.workdir / f"demo_{n}.duckdb"
        if not db.exists():
            t = time.perf_counter()
            code = (
                "import sys\nfrom pyprofile.demo import generate_demo\n"
                f"print(generate_demo(sys.argv[1], customers={n}, seed=1))\n"
                "print('{}')\n"
            )
            _, gen_peak = run_child(code, db)
            print(
                f"[{n:,} customers] generated in {time.perf_counter() - t:.1f}s "
                f"(peak {gen_peak:,.0f} MiB)",
                flush=True,
            )
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            n_orders = con.execute("select count(*) from raw.orders").fetchall()[0][0]
            n_items = con.execute("select count(*) from raw.order_items").fetchall()[0][0]
            n_events = con.execute("select count(*) from raw.events").fetchall()[0][0]
        res, peak = dbt_features(db)
        rows.append(
            (
                n,
                n_orders,
                "dbt staging + features, all models (wall, incl. dbt start-up)",
                res["seconds"],
                peak,
            )
        )
        rows.append((n, n_orders, "  sum of model times (2 threads)", res["sql_seconds"], None))
        rows.append(
            (n, n_orders, "  RFM + lifetimes model (feat_customer__rfm)", res["rfm_seconds"], None)
        )
        slow = sorted(res["nodes"].items(), key=lambda kv: -kv[1])[:6]
        print("  slowest models: " + ", ".join(f"{k} {v:.1f}s" for k, v in slow), flush=True)
        bare, bare_peak = run_child(BARE, db)
        rows.append((n, n_orders, "bare DuckDB RFM GROUP BY", bare["seconds"], bare_peak))
        pdr, pd_peak = run_child(PANDAS, db)
        rows.append(
            (
                n,
                n_orders,
                "pandas RFM (+ load from DuckDB)",
                pdr["seconds"] + pdr["load_seconds"],
                pd_peak,
            )
        )
        if n_orders <= args.skip_lifetimes_above:
            lt, lt_peak = run_child(LIFETIMES, db)
            rows.append(
                (
                    n,
                    n_orders,
                    "lifetimes summary (+ load from DuckDB)",
                    lt["seconds"] + lt["load_seconds"],
                    lt_peak,
                )
            )
        print(f"[{n:,} customers] {n_orders:,} orders, {n_items:,} lines, {n_events:,} events")
        for _, o, name, sec, mem in rows[-6:]:
            if _ != n:
                continue
            mem_s = f"{mem:,.0f} MiB" if mem else ""
            print(f"  {name:<55} {sec:8.2f}s {o / sec:14,.0f} orders/s  {mem_s}", flush=True)
    lines = [
        "| customers | orders | step | seconds | orders/s | peak RSS (MiB) |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for n, o, name, sec, mem in rows:
        lines.append(
            f"| {n:,} | {o:,} | {name.strip()} | {sec:.2f} | {o / sec:,.0f} | "
            f"{'' if mem is None else f'{mem:,.0f}'} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Feature layer benchmark\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_features.py --customers "
        f"{' '.join(map(str, args.customers))}` on {os.cpu_count()} CPU cores.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
