"""The feature layer against the engine: issue 15's targets, measured in one run.

    .venv/bin/python benchmarks/bench_features.py --customers 1000000 \
        [--source <demo warehouse>] [--workdir /tmp/pyprofile-bench] [--out <file>]

For each size: a copy of the demo warehouse (``--source``, else generated once with seed 1 and
cached under --workdir) with its last day of orders, order lines and events set aside. Then, each
in its own process so that peak memory is each one's own:

1. the whole staging + feature layer from scratch (``dbt run --select staging features``): wall
   time (dbt's start-up included), peak RSS, and the RFM model's own time;
2. three bare per-customer GROUP BYs over the same raw orders, order lines (joined to their
   order's customer) and events, each written to a table as the models are;
3. the bare RFM GROUP BY, pandas' RFM and lifetimes' ``summary_data_from_transaction_data``;
4. the set-aside day appended to the raw tables and the layer run again (incremental).

Prints the figures and each target's ratio, and appends a markdown section to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Per-customer GROUP BYs a hand-written pipeline would start from, written to tables.
BARE = """
import duckdb, time, json, sys
con = duckdb.connect(sys.argv[1])
queries = {
    "orders": '''select customer_id, count(*) as orders, sum(amount) as spend,
        max(ordered_at) as last_at from raw.orders group by customer_id''',
    "order_lines": '''select o.customer_id, count(*) as lines, sum(i.quantity) as units,
        sum(i.quantity * i.unit_price) as spend
        from raw.order_items as i join raw.orders as o using (order_id) group by o.customer_id''',
    "events": '''select customer_id, count(*) as events, max(event_at) as last_at
        from raw.events group by customer_id''',
    "rfm": '''select customer_id, max(ordered_at) as last_at, count(*) as orders,
        sum(amount) as spend from raw.orders
        where status not in ('cancelled', 'returned') group by customer_id''',
}
out = {}
for name, sql in queries.items():
    t = time.perf_counter()
    con.execute(f"create or replace temp table bare_{name} as {sql}")
    out[name] = time.perf_counter() - t
print(json.dumps(out))
"""

PANDAS = """
import duckdb, time, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
t0 = time.perf_counter()
df = con.sql("select customer_id, ordered_at, amount::double amount, status "
             "from staging.stg_shop__orders").df()
df = df[~df.status.isin(["cancelled", "returned"])]
as_of = df.ordered_at.max().normalize()
g = df.groupby("customer_id")
rfm = g.agg(last=("ordered_at", "max"), orders=("amount", "size"), spend=("amount", "sum"))
rfm["recency_days"] = (as_of - rfm["last"].dt.normalize()).dt.days
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

LIFETIMES = """
import duckdb, time, json, sys
from lifetimes.utils import summary_data_from_transaction_data
con = duckdb.connect(sys.argv[1], read_only=True)
t0 = time.perf_counter()
df = con.sql("select customer_id, ordered_at, amount::double amount "
             "from staging.stg_shop__orders where status not in ('cancelled', 'returned')").df()
s = summary_data_from_transaction_data(df, "customer_id", "ordered_at",
    monetary_value_col="amount", observation_period_end=df.ordered_at.max(), freq="D")
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

DBT = """
import sys, json, time
from pyprofile.dbt import run_dbt
t = time.perf_counter()
run = run_dbt("run", sys.argv[1], select=["staging", "features"])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "nodes": {n.name: n.seconds for n in run.nodes}}))
"""

# The last day of events, its orders and their lines, moved to schema ``held`` and back.
HOLD = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1])
day = con.execute("select max(cast(event_at as date)) from raw.events").fetchone()[0]
con.execute("begin")
con.execute("create schema held")
con.execute("create table held.orders as select * from raw.orders "
            "where cast(ordered_at as date) = ?", [day])
con.execute("create table held.order_items as select * from raw.order_items "
            "where order_id in (select order_id from held.orders)")
con.execute("create table held.events as select * from raw.events "
            "where cast(event_at as date) = ?", [day])
con.execute("delete from raw.order_items where order_id in (select order_id from held.orders)")
con.execute("delete from raw.orders where cast(ordered_at as date) = ?", [day])
con.execute("delete from raw.events where cast(event_at as date) = ?", [day])
con.execute("commit")
print(json.dumps({"day": str(day)}))
"""

UNHOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("begin")
for t in ("orders", "order_items", "events"):
    con.execute(f"insert into raw.{t} select * from held.{t}")
con.execute("drop schema held cascade")
con.execute("commit")
print("{}")
"""


def run_child(code: str, db: Path) -> tuple[dict, float]:
    """Run a Python snippet in a child; return its JSON result and its own peak RSS (MiB)."""
    wrapper = (
        "import resource\n"
        f"exec({code!r})\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, str(db)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-2]), float(lines[-1].split()[1])


def prepare(source: Path | None, workdir: Path, n: int) -> Path:
    """A working copy of the demo warehouse with its last day set aside."""
    if source is None:
        source = workdir / f"demo_{n}.duckdb"
        if not source.exists():
            code = "import sys\nfrom pyprofile.demo import generate_demo\n"
            code += f"generate_demo(sys.argv[1], customers={n}, seed=1)\nprint('{{}}')\n"
            run_child(code, source)
    db = workdir / f"work_{n}.duckdb"
    for old in (db, Path(f"{db}.wal")):
        old.unlink(missing_ok=True)
    shutil.copy(source, db)
    run_child(HOLD, db)
    return db


def measure(db: Path, lifetimes: bool) -> dict:
    """Every figure of one size (see the module docstring)."""
    full, full_peak = run_child(DBT, db)
    bare, bare_peak = run_child(BARE, db)
    pandas, _ = run_child(PANDAS, db)
    life = run_child(LIFETIMES, db)[0]["seconds"] if lifetimes else None
    run_child(UNHOLD, db)
    append, append_peak = run_child(DBT, db)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = {
            t: con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("orders", "order_items", "events")
        }
    return {
        "counts": counts,
        "full": full["seconds"],
        "full_peak_mib": full_peak,
        "nodes": full["nodes"],
        "rfm": full["nodes"].get("feat_customer__rfm"),
        "bare": bare,
        "bare_peak_mib": bare_peak,
        "pandas_rfm": pandas["seconds"],
        "lifetimes": life,
        "append": append["seconds"],
        "append_peak_mib": append_peak,
        "append_nodes": append["nodes"],
    }


def report(n: int, r: dict, command: str) -> str:
    """A markdown section: the figures, each target's ratio, the slowest models."""
    b = r["bare"]
    bare3 = b["orders"] + b["order_lines"] + b["events"]
    c = r["counts"]
    rows = [
        ("staging + features from scratch (dbt run, wall)", r["full"], r["full_peak_mib"]),
        ("bare GROUP BY orders / order lines / events", bare3, r["bare_peak_mib"]),
        ("  orders", b["orders"], None),
        ("  order lines (joined to orders)", b["order_lines"], None),
        ("  events", b["events"], None),
        ("RFM model (feat_customer__rfm)", r["rfm"], None),
        ("bare RFM GROUP BY", b["rfm"], None),
        ("pandas RFM (load included)", r["pandas_rfm"], None),
        ("lifetimes summary (load included)", r["lifetimes"], None),
        ("one day appended, layer re-run (dbt run, wall)", r["append"], r["append_peak_mib"]),
    ]
    lines = [
        f"\n## `{command}`\n",
        f"{n:,} customers: {c['orders']:,} orders, {c['order_items']:,} order lines, "
        f"{c['events']:,} events; {os.cpu_count()} CPU cores.\n",
        "| step | seconds | peak RSS (MiB) |",
        "|---|---:|---:|",
    ]
    for name, sec, mem in rows:
        s = "-" if sec is None else f"{sec:.1f}"
        lines.append(f"| {name} | {s} | {'' if mem is None else f'{mem:,.0f}'} |")
    life = r["lifetimes"]
    lines += [
        "",
        f"- layer / three bare GROUP BYs: {r['full'] / bare3:.1f}x (target <= 3x)",
        f"- RFM model / bare RFM: {r['rfm'] / b['rfm']:.1f}x (target <= 2x)",
        "- lifetimes / RFM model: "
        + ("-" if life is None else f"{life / r['rfm']:.1f}x (target >= 10x)"),
        f"- peak RSS of the layer: {r['full_peak_mib'] / 1024:.2f} GB (target <= 4 GB)",
        f"- append / full build: {r['append'] / r['full']:.0%} (target <= 10 %)",
    ]
    for key, title in (("nodes", "from scratch"), ("append_nodes", "append")):
        slow = sorted(r[key].items(), key=lambda kv: -kv[1])[:8]
        lines.append(f"- slowest models ({title}): " + ", ".join(f"{k} {v:.1f} s" for k, v in slow))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--source", type=Path, help="an existing demo warehouse (one size)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pyprofile-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/features.md")
    parser.add_argument("--skip-lifetimes-above", type=int, default=20_000_000)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(sys.argv)
    for n in args.customers:
        t = time.perf_counter()
        db = prepare(args.source, args.workdir, n)
        print(f"[{n:,} customers] prepared in {time.perf_counter() - t:.0f} s", flush=True)
        result = measure(db, lifetimes=n * 10 <= args.skip_lifetimes_above)
        print(json.dumps(result, indent=1), flush=True)
        text = report(n, result, command)
        print(text, flush=True)
        with args.out.open("a") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
