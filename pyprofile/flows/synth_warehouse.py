"""A synthetic warehouse: a new DuckDB file with synthetic ``raw.*`` on which the same dbt
project builds, and its fidelity, utility and privacy measured against the source.

:func:`run_synth_warehouse` reads the source's raw tables (read-only: the source is never
written), keeps a holdout of customers out of training, fits a
:class:`~pyprofile.models.synth.relational.RelationalSynthesizer` on the rest, samples a whole
shop and writes it to ``out``, a NEW file (built beside it and renamed into place in one step,
so ``out`` is either the previous synthetic warehouse or the new one). With ``evaluate`` it
then builds the dbt staging and feature layers on ``out`` (at the source's ``as_of``) and
writes ``ml.synthetic_quality`` into ``out`` in one transaction: the feature table's quality
report (``scope = 'table'``) and the warehouse-level checks (``scope = 'warehouse'``: order
checks, churn TSTR vs TRTR, distance to closest record, membership inference, copied order
sequences, generation speed). Only aggregate scores are written there, no real row.
Called by the CLI (``pyprofile synth-warehouse``).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from contextlib import suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyprofile.errors import InputError, PyprofileError
from pyprofile.flows.publish import observation_date, publish
from pyprofile.flows.synthesizer import QUALITY_SCHEMA
from pyprofile.models.synth import checks
from pyprofile.models.synth import privacy as priv
from pyprofile.models.synth import quality as q
from pyprofile.models.synth.relational import REQUIRED, RelationalSynthesizer
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.quality import quality_report
from pyprofile.warehouse.registry import version_of
from pyprofile.warehouse.sql import quote, string

MARK = "pyprofile synthetic warehouse"  # comment on every raw table of an output file
RAW = ("customers", "orders", "order_items", "products", "events")
LABEL = "churned"
LEAKS = ("purchased", "spend_in_window", "purchase_days_in_window", "horizon_days")
MIN_HOLDOUT = 20

# the contract columns, typed as the synthesizer reads them; other columns pass through
TYPED = {
    "customers": {"customer_id": "cast({} as varchar)", "signup_at": "try_cast({} as timestamp)"},
    "orders": {
        "order_id": "cast({} as varchar)",
        "customer_id": "cast({} as varchar)",
        "ordered_at": "try_cast({} as timestamp)",
        "amount": "try_cast({} as double)",
        "discount": "coalesce(try_cast({} as double), 0)",
    },
    "order_items": {
        "order_id": "cast({} as varchar)",
        "product_id": "cast({} as varchar)",
        "quantity": "try_cast({} as bigint)",
        "unit_price": "try_cast({} as double)",
    },
    "products": {"product_id": "cast({} as varchar)"},
    "events": {
        "customer_id": "cast({} as varchar)",
        "event_at": "try_cast({} as timestamp)",
        "event_type": "cast({} as varchar)",
        "product_id": "cast({} as varchar)",
        "session_id": "cast({} as varchar)",
    },
}
# which rows are valid (the staging layer's main rules), per table alias ``t``
VALID = {
    "customers": "t.customer_id is not null",
    "orders": "t.order_id is not null and t.ordered_at is not null and t.amount >= 0 "
    "and t.ordered_at <= cast(current_timestamp as timestamp) "
    "and t.ordered_at >= timestamp '1970-01-01' and t.customer_id in (select customer_id from c)",
    "order_items": "t.quantity > 0 and t.unit_price >= 0 and t.order_id in (select order_id from o)"
    " and t.product_id in (select product_id from p)",
    "products": "t.product_id is not null",
    "events": "t.event_at is not null and t.event_type is not null and t.event_type <> '' "
    "and t.event_at <= cast(current_timestamp as timestamp) "
    "and t.event_at >= timestamp '1970-01-01' and t.customer_id in (select customer_id from c)",
}
KEYS = {"customers": "customer_id", "orders": "order_id", "products": "product_id"}


def run_synth_warehouse(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    customers: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    holdout: float = 0.2,
    evaluate: bool = True,
    random_state: int = 0,
    device: str = "auto",
    verbose: bool = False,
    epsilon: float | None = None,
    delta: float | None = None,
    **synthesizer_params: Any,
) -> dict:
    """Write a synthetic warehouse of ``customers`` customers (default: as many as the
    source has) to the new file ``out``; returns a summary dict.

    ``holdout`` customers are kept out of training for the utility and privacy
    metrics. Other keyword arguments go to the customer model (:class:`Synthesizer`).
    ``epsilon`` (and ``delta``) make the copy (epsilon, delta)-differentially private for
    each customer with all its rows (the spent budget goes to the summary and to
    ``ml.synthetic_quality``); the quality rows written with ``evaluate`` compare the copy
    with the real shop and are not covered: share a private copy built with
    ``evaluate=False``.

    Known limit: dbt-duckdb keeps its connection to the file it built open for the rest of
    the process, so a process that evaluated ``out`` must not write the same ``out`` again
    (it would go on reading the replaced file); the CLI runs one flow per process.
    """
    src_path, out_path = _paths(src, out)
    with Warehouse.open(src_path, read_only=True) as wh:
        real, schemas = read_shop(wh)
        as_of = observation_date(wh, tables.FEATURES) or _last_order_day(real)
        features = {t: wh.read(t) for t in (tables.FEATURES, tables.TRAINING) if wh.exists(t)}
    train_ids, hold_ids = split_customers(real["customers"], holdout, random_state)
    params = {"epochs": epochs, "batch_size": batch_size}
    model = RelationalSynthesizer(
        random_state=random_state,
        device=device,
        verbose=verbose,
        epsilon=epsilon,
        delta=delta,
        synthesizer_params={k: v for k, v in synthesizer_params.items() if v is not None} or None,
        **{k: v for k, v in params.items() if v is not None},
    )
    summary = {"source": str(src_path), "output": str(out_path), "as_of_date": as_of}
    summary.update(training_customers=len(train_ids), holdout_customers=len(hold_ids))
    synthetic = _fit_and_sample(model, real, train_ids, customers, summary)
    summary["write_seconds"] = _write(out_path, synthetic, schemas)
    if evaluate:
        split = {"train": train_ids, "holdout": hold_ids}
        evaluate_warehouse(out_path, real, synthetic, features, split, summary)
    return summary


def _fit_and_sample(model, real, train_ids, customers, summary) -> dict[str, pa.Table]:
    """Fit on the training customers, sample the synthetic shop; timings into ``summary``."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(**_subset(real, train_ids))
    fit_seconds = time.perf_counter() - t0
    n = int(customers) if customers is not None else real["customers"].num_rows
    t0 = time.perf_counter()
    synthetic = model.sample(n)
    sample_seconds = time.perf_counter() - t0
    _refuse_real_ids(real, synthetic)
    rows = {f"raw.{k}": v.num_rows for k, v in synthetic.items()}
    summary.update(
        model_version=version_of(model.to_artifact()),
        customers=n,
        rows_written=rows,
        rows=sum(rows.values()),
        fit_seconds=fit_seconds,
        sample_seconds=sample_seconds,
        dp_epsilon=model.epsilon_,
        dp_delta=model.delta_,
        rows_per_second=sum(rows.values()) / max(sample_seconds, 1e-9),
        notes=[str(w.message) for w in caught],
    )
    return synthetic


# ---------------------------------------------------------------------- paths
def _paths(src, out) -> tuple[Path, Path]:
    """The source (must exist) and the output (a new file, or one this flow wrote)."""
    src_path, out_path = Path(src).resolve(), Path(out).resolve()
    if not src_path.is_file():
        raise InputError(f"source warehouse {src} does not exist")
    if out_path == src_path or (out_path.exists() and os.path.samefile(out_path, src_path)):
        raise InputError(
            f"--out {out} is the source warehouse: the synthetic warehouse must be a new file"
        )
    if out_path.exists():
        _check_ours(out_path)
    return src_path, out_path


def _check_ours(path: Path) -> None:
    """Refuse to replace a file that this flow did not write."""
    try:
        with Warehouse.open(path, read_only=True) as wh:
            marks = wh.query(
                "select table_name, comment from duckdb_tables() "
                "where database_name = current_database() and schema_name = 'raw'"
            ).to_pylist()
    except PyprofileError:
        marks = []
    if not marks or any(m["comment"] != MARK for m in marks):
        raise InputError(
            f"--out {path} exists and was not written by pyprofile synth-warehouse: refusing "
            "to replace it (pick another --out, or delete the file yourself)"
        )


# ---------------------------------------------------------------------- reading
def read_shop(wh: Warehouse) -> tuple[dict[str, pa.Table], dict[str, pa.Schema]]:
    """The source's raw tables, cleaned as staging would (valid keys and times, no orphans,
    no duplicates), and their raw column types; ``raw.events`` is optional."""
    missing = [f"raw.{t}" for t in RAW[:4] if not wh.exists(f"raw.{t}")]
    if missing:
        raise InputError(
            f"the source lacks {', '.join(missing)}: synth-warehouse needs raw.customers, "
            "raw.orders, raw.order_items and raw.products (raw.events is optional)"
        )
    present = [t for t in RAW if wh.exists(f"raw.{t}")]
    columns = {t: list(wh.require(f"raw.{t}", REQUIRED[t])) for t in present}
    ctes = {t: _cleaned(t, columns[t]) for t in present}
    with_clause = "with " + ", ".join(
        f"{alias} as ({ctes[t]})"
        for alias, t in (("c", "customers"), ("o", "orders"), ("p", "products"))
    )
    out, schemas = {}, {}
    for t in present:
        body = {"customers": "c", "orders": "o", "products": "p"}.get(t)
        sql = f"{with_clause} select * from {body}" if body else f"{with_clause} {ctes[t]}"
        out[t] = wh.query(sql + _order_by(t, columns[t]))
        schemas[t] = wh.query(f"select * from raw.{quote(t)} limit 0").schema
    return out, schemas


def _cleaned(table: str, columns: list[str]) -> str:
    """The select of one cleaned raw table (typed contract columns, others as they are)."""
    typed = TYPED[table]
    exprs = [
        f"{typed[c].format(quote(c)) if c in typed else quote(c)} as {quote(c)}" for c in columns
    ]
    inner = f"select {', '.join(exprs)} from raw.{quote(table)}"
    names = ", ".join(f"t.{quote(c)}" for c in columns)
    valid = VALID[table]
    if "discount" in columns and table == "orders":
        valid += " and t.discount >= 0"
    key = KEYS.get(table)
    if key is None:
        return f"select {names} from ({inner}) as t where {valid}"
    order = ", ".join(f"t.{quote(c)}" for c in columns if c != key)
    ranked = (
        f"select {names}, row_number() over (partition by t.{quote(key)}"
        f"{' order by ' + order if order else ''}) as pyprofile_rank "
        f"from ({inner}) as t where {valid}"
    )
    return f"select {names} from ({ranked}) as t where pyprofile_rank = 1"


def _order_by(table: str, columns: list[str]) -> str:
    keys = {
        "customers": ["customer_id"],
        "orders": ["order_id"],
        "order_items": ["order_id", "product_id", "quantity", "unit_price"],
        "products": ["product_id"],
        "events": [
            c for c in ("customer_id", "event_at", "event_type", "product_id") if c in columns
        ],
    }[table]
    return " order by " + ", ".join(f"{quote(k)} nulls first" for k in keys)


def _last_order_day(real: dict[str, pa.Table]) -> date | None:
    latest = pc.max(real["orders"]["ordered_at"]).as_py()
    return latest.date() if latest is not None else None


def split_customers(customers: pa.Table, holdout: float, seed: int) -> tuple[list, list]:
    """Training and held-out customer ids (a seeded permutation)."""
    ids = customers["customer_id"].to_pylist()
    if not 0 <= holdout < 1:
        raise InputError(f"holdout must be in [0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(len(ids))
    n_hold = int(round(len(ids) * holdout))
    n_hold = n_hold if n_hold >= MIN_HOLDOUT else 0
    return [ids[i] for i in sorted(order[n_hold:])], [ids[i] for i in sorted(order[:n_hold])]


def _subset(real: dict[str, pa.Table], ids: list) -> dict[str, pa.Table]:
    """The shop restricted to the customers ``ids`` (their orders, lines and events)."""
    keep = pa.array(ids, pa.string())
    customers = real["customers"].filter(pc.is_in(real["customers"]["customer_id"], keep))
    orders = real["orders"].filter(pc.is_in(real["orders"]["customer_id"], keep))
    items = real["order_items"].filter(
        pc.is_in(real["order_items"]["order_id"], orders["order_id"].combine_chunks())
    )
    out = {"customers": customers, "orders": orders, "order_items": items}
    out["products"] = real["products"]
    if "events" in real:
        out["events"] = real["events"].filter(pc.is_in(real["events"]["customer_id"], keep))
    return out


def _refuse_real_ids(real: dict, synthetic: dict) -> None:
    for table, key in (("customers", "customer_id"), ("orders", "order_id")):
        clash = pc.sum(pc.is_in(synthetic[table][key], real[table][key].combine_chunks())).as_py()
        if clash:
            raise InputError(
                f"{clash} synthetic {key}(s) equal real ones: the source uses ids of the form "
                "SYN-…; rename them before synthesising"
            )


# ---------------------------------------------------------------------- writing
def _as_raw(name: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the types of the source's ``raw.<name>``: the copy has the source's schema,
    or the run stops with one line naming the column (never a silently different type)."""
    arrays = []
    for field in schema:
        try:
            arrays.append(table[field.name].cast(field.type, safe=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"synthetic raw.{name}.{field.name} cannot be written as {field.type} "
                f"(the source's type): {exc}"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def _write(out_path: Path, synthetic: dict[str, pa.Table], schemas) -> float:
    """Build the synthetic warehouse in a temporary file beside ``out_path`` and rename it
    into place (the old file, if any, is replaced in one step)."""
    t0 = time.perf_counter()
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.partial")
    try:
        wh = Warehouse.open(tmp)
        try:
            data = {f"raw.{k}": _as_raw(k, v, schemas[k]) for k, v in synthetic.items()}
            with wh.transaction():
                wh.write_many(data)
                for name in data:
                    schema, table = name.split(".")
                    wh.execute(f"comment on table {quote(schema)}.{quote(table)} is {string(MARK)}")
            wh.execute("checkpoint")
        finally:
            wh.close()
        wal = Path(str(out_path) + ".wal")
        if wal.exists():
            wal.unlink()  # a stale log of the old file must never replay onto the new one
        os.replace(tmp, out_path)
    finally:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            with suppress(FileNotFoundError):
                leftover.unlink()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- evaluation
def evaluate_warehouse(out_path: Path, real, synthetic, features, split, summary) -> None:
    """Build staging and features on the synthetic warehouse, measure it, and write
    ``ml.synthetic_quality`` into it (one transaction); adds the figures to ``summary``."""
    from pyprofile.dbt import run_dbt

    t0 = time.perf_counter()
    as_of = summary["as_of_date"]
    run_dbt(
        "build",
        out_path,
        select=["staging", "features"],
        vars={"as_of": as_of.isoformat()} if as_of else None,
    )
    summary["dbt_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    real_pd = {k: v.to_pandas() for k, v in real.items()}
    syn_pd = {k: v.to_pandas() for k, v in synthetic.items()}
    rows = _warehouse_rows(real_pd, syn_pd, split, summary)
    with Warehouse.open(out_path) as wh:
        if tables.FEATURES in features:
            rows += _feature_rows(wh, features, split, summary)
        else:
            summary["notes"].append(
                f"the source has no {tables.FEATURES}: feature-level quality, TSTR and DCR "
                "skipped (build the source's features with dbt first)"
            )
        summary["evaluate_seconds"] = time.perf_counter() - t0
        rows += [
            _metric("warehouse", "generation", k, summary[k])
            for k in ("fit_seconds", "sample_seconds", "rows_per_second", "dbt_seconds")
        ]
        if summary["dp_epsilon"] is not None:
            rows += [
                _metric("warehouse", "privacy", k, summary[k]) for k in ("dp_epsilon", "dp_delta")
            ]
        publish(wh, tables={tables.SYNTHETIC_QUALITY: _quality_table(rows, summary)})
    summary["quality_table"] = tables.SYNTHETIC_QUALITY


def _warehouse_rows(real, syn, split, summary) -> list[dict]:
    """Order checks and copied order sequences."""
    found = checks.order_checks(real, syn)
    summary["order_checks"] = {r["metric"]: r for r in found}
    rows = [_metric("warehouse", "order_checks", r["metric"], r["score"]) for r in found]
    orders = real["orders"]
    hold = orders["customer_id"].isin(set(split["holdout"]))
    seq = priv.sequence_copies(orders[~hold], orders[hold], syn["orders"])
    summary["sequences"] = seq
    rows += [_metric("warehouse", "privacy", k, v) for k, v in seq.items()]
    return rows


def _feature_rows(wh: Warehouse, features: dict, split, summary) -> list[dict]:
    """Quality report of the feature table (SQL), TSTR for churn, DCR and membership
    inference on customer features."""
    real = features[tables.FEATURES]
    kinds = q.column_kinds(real, exclude=("customer_id", "as_of_date"))
    synthetic_features = wh.read(tables.FEATURES)
    kinds = {c: k for c, k in kinds.items() if c in synthetic_features.column_names}
    with wh.scratch(real) as name:
        report = quality_report(wh, name, tables.FEATURES, kinds)
    summary.update(
        quality_score=report.score,
        column_shapes=report.column_shapes,
        column_pair_trends=report.column_pair_trends,
    )
    rows = [{**r, "scope": "table", "source_table": tables.FEATURES} for r in report.as_rows()]
    real_df, syn_df = real.to_pandas(), synthetic_features.to_pandas()
    members = real_df["customer_id"].isin(set(split["train"]))
    if split["holdout"]:
        privacy = q.privacy(real_df[members], real_df[~members], syn_df, kinds)
        privacy.update(
            priv.membership_inference(real_df[members], real_df[~members], syn_df, kinds)
        )
        summary["privacy"] = privacy
        rows += [_metric("warehouse", "privacy", k, v) for k, v in privacy.items()]
    if tables.TRAINING not in features:
        return rows
    utility = _utility(features[tables.TRAINING], wh, split)
    if utility:
        summary["utility"] = utility
        rows += [_metric("warehouse", "utility", k, v) for k, v in utility.items()]
    return rows


def _utility(real: pa.Table, wh: Warehouse, split) -> dict | None:
    """Churn ROC AUC on held-out real customers: trained on synthetic (TSTR) vs on the
    training customers (TRTR)."""
    if not split["holdout"] or not wh.exists(tables.TRAINING):
        return None
    synthetic = wh.read(tables.TRAINING).to_pandas()
    real_df = real.to_pandas()
    kinds = q.column_kinds(real, exclude=("customer_id", "as_of_date", *LEAKS))
    kinds = {c: k for c, k in kinds.items() if c in synthetic.columns}
    members = real_df["customer_id"].isin(set(split["train"]))
    if LABEL not in kinds or synthetic[LABEL].nunique() < 2 or real_df[LABEL].nunique() < 2:
        return None
    return q.utility(real_df[members], real_df[~members], synthetic, kinds, LABEL)


def _metric(scope, group, name, value) -> dict:
    value = float("nan") if value is None else float(value)
    return {
        "scope": scope,
        "source_table": "raw",
        "metric_group": group,
        "metric": name,
        "column_1": None,
        "column_2": None,
        "score": value,
        "counted": True,
    }


def _quality_table(rows: list[dict], summary: dict) -> pa.Table:
    created = datetime.now(UTC).replace(tzinfo=None)
    common = {
        "model_version": summary["model_version"],
        "as_of_date": summary["as_of_date"],
        "created_at": created,
    }
    frame = pd.DataFrame([{**common, **r} for r in rows])
    frame = frame[QUALITY_SCHEMA.names]
    return pa.Table.from_pandas(frame, schema=QUALITY_SCHEMA, preserve_index=False)


def format_warehouse(summary: dict) -> list[tuple[str, str]]:
    """(name, value) lines the CLI prints after ``synth-warehouse``."""

    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    lines = [(f"{name} rows", f"{n:,}") for name, n in summary["rows_written"].items()]
    if summary.get("dp_epsilon") is not None:
        lines.append(
            (
                "differential privacy (per customer)",
                f"epsilon {summary['dp_epsilon']:.2f}, delta {summary['dp_delta']:.1e}",
            )
        )
    lines += [
        ("written to", summary["output"]),
        ("model version", summary["model_version"]),
        (
            "generation",
            f"{summary['sample_seconds']:.1f} s ({summary['rows_per_second']:,.0f} rows/s)",
        ),
    ]
    if "quality_score" in summary:
        lines += [
            ("features: quality score", f(summary["quality_score"])),
            (
                "  column shapes / pair trends",
                f"{f(summary['column_shapes'])} / {f(summary['column_pair_trends'])}",
            ),
        ]
    checks = summary.get("order_checks") or {}
    if checks:
        worst = min(checks.values(), key=lambda r: r["score"])
        mean = float(np.nanmean([r["score"] for r in checks.values()]))
        lines.append(
            ("order checks: mean / worst", f"{f(mean)} / {worst['metric']} {f(worst['score'])}")
        )
    if "utility" in summary:
        u = summary["utility"]
        lines.append(("churn AUC TSTR / TRTR", f"{f(u['tstr_auc'])} / {f(u['trtr_auc'])}"))
    if "privacy" in summary:
        p = summary["privacy"]
        lines += [
            (
                "DCR median synthetic / holdout",
                f"{f(p['dcr_synthetic_median'])} / {f(p['dcr_holdout_median'])}",
            ),
            ("membership inference AUC", f(p["mia_auc"])),
        ]
    if "sequences" in summary:
        lines.append(
            ("copied order sequences", f"{summary['sequences']['sequence_exact_copies']:.0f}")
        )
    return lines
