"""Warehouse flow: read a table, train the synthesizer, write synthetic customers and quality.

``run_synth`` is what the CLI (``pyprofile synth``) and the dbt Python model call.
"""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from pyprofile.errors import InputError
from pyprofile.synth import quality as q
from pyprofile.synth.synthesizer import Synthesizer
from pyprofile.warehouse import Warehouse, qualified

OUTPUT = "ml.synthetic_customers"
QUALITY = "ml.synthetic_quality"
SCRATCH = "ml._synthetic_customers_scoring"
MODEL_NAME = "synthesizer"
MIN_HOLDOUT_ROWS = 50


def column_kinds(model: Synthesizer) -> dict[str, str]:
    """SDMetrics-style kind of every modelled column."""
    kinds = {}
    for spec in model.transformer_.columns_:
        if spec["type"] == "discrete":
            kinds[spec["name"]] = "boolean" if spec["kind"] == "bool" else "categorical"
        else:
            kinds[spec["name"]] = (
                "datetime" if spec["kind"] in ("date", "timestamp") else "numerical"
            )
    return kinds


def _split(n: int, holdout: float, seed: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_hold = int(round(n * holdout)) if n * holdout >= MIN_HOLDOUT_ROWS else 0
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


def run_synth(
    wh,
    table: str = "features.customer_features",
    rows: int | None = None,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    conditions: dict | None = None,
    label: str | None = None,
    privacy_filter: bool = False,
    holdout: float = 0.2,
    random_state: int = 0,
    device: str = "auto",
    model_name: str = MODEL_NAME,
    verbose: bool = False,
) -> dict:
    """Train on ``table`` (minus a ``holdout`` share kept for utility and privacy metrics), write
    ``rows`` synthetic rows (default: as many as the table has) to ``ml.synthetic_customers`` and
    the quality report to ``ml.synthetic_quality`` in one transaction; returns a summary dict.

    ``epochs`` and ``batch_size`` default to the Synthesizer's own defaults. ``conditions``
    ({column: value}) makes every synthetic row carry those values. ``privacy_filter`` drops
    synthetic rows closer to a real training row than the held-out rows' 5th percentile.
    """
    wh = Warehouse.open(wh)
    source = wh.read(table)
    n = source.num_rows
    if n == 0:
        raise InputError(f"table {table} is empty (0 rows): nothing to learn from")
    rows = n if rows is None else int(rows)
    if rows < 1:
        raise InputError(f"rows must be at least 1, got {rows}")
    all_null = [c for c in source.column_names if source[c].null_count == n]
    if all_null:
        warnings.warn(
            f"{table}: column(s) {', '.join(all_null)} are null on all {n} rows; "
            "left out of the model and written as nulls",
            stacklevel=2,
        )
    data = source.drop_columns(all_null)
    train_idx, hold_idx = _split(n, holdout, random_state)
    train = data.take(pa.array(train_idx))
    params = {"random_state": random_state, "device": device, "verbose": verbose}
    if epochs is not None:
        params["epochs"] = epochs
    if batch_size is not None:
        params["batch_size"] = batch_size
    model = Synthesizer(**params)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, label=label)
    fit_seconds = time.perf_counter() - t0
    notes = [str(w.message) for w in caught]
    t0 = time.perf_counter()
    extra = int(np.ceil(rows * 0.15)) if privacy_filter and len(hold_idx) else 0
    synthetic = model.sample_arrow(rows + extra, conditions)
    sample_seconds = time.perf_counter() - t0
    kinds = column_kinds(model)
    train_df, synth_df = train.to_pandas(), synthetic.to_pandas()
    hold_df = data.take(pa.array(hold_idx)).to_pandas() if len(hold_idx) else None
    dropped = 0
    if extra:
        keep = q.privacy_filter(train_df, hold_df, synth_df, kinds)
        dropped = int((~keep).sum())
        chosen = np.flatnonzero(keep)[:rows]
        synthetic, synth_df = synthetic.take(pa.array(chosen)), synth_df.iloc[chosen]
    summary = {
        "table": table,
        "rows_in_table": n,
        "training_rows": len(train_idx),
        "holdout_rows": len(hold_idx),
        "rows_written": synthetic.num_rows,
        "rows": synthetic.num_rows,
        "excluded_columns": {**model.transformer_.excluded_, **dict.fromkeys(all_null, "all null")},
        "label": label,
        "conditions": conditions or {},
        "epochs": model.epochs,
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "privacy_filter_dropped": dropped,
        "notes": notes,
    }
    report = _quality(wh, table, synthetic, kinds)
    summary.update(
        quality_score=report.score,
        column_shapes=report.column_shapes,
        column_pair_trends=report.column_pair_trends,
    )
    metric_rows = report.as_rows()
    if hold_df is not None:
        if label is not None:
            summary["utility"] = q.utility(train_df, hold_df, synth_df, kinds, label)
            metric_rows += [_metric("utility", k, v) for k, v in summary["utility"].items()]
        summary["privacy"] = q.privacy(train_df, hold_df, synth_df, kinds)
        metric_rows += [_metric("privacy", k, v) for k, v in summary["privacy"].items()]
    metrics = {k: summary[k] for k in ("quality_score", "column_shapes", "column_pair_trends")}
    version = model.save(wh, model_name, metrics=metrics)
    summary["model_version"] = version
    output = _output(source.schema, synthetic, version)
    created = datetime.now(UTC).replace(tzinfo=None)
    quality = pa.Table.from_pylist(
        [
            {"model_version": version, "source_table": table, "created_at": created, **r}
            for r in metric_rows
        ],
        schema=QUALITY_SCHEMA,
    )
    wh.write_many({OUTPUT: output, QUALITY: quality})
    summary["quality_table"] = QUALITY
    summary["output_table"] = OUTPUT
    return summary


QUALITY_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("source_table", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("metric_group", pa.string()),
        ("metric", pa.string()),
        ("column_1", pa.string()),
        ("column_2", pa.string()),
        ("score", pa.float64()),
        ("counted", pa.bool_()),
    ]
)


def _metric(group, name, value):
    return {
        "metric_group": group,
        "metric": name,
        "column_1": None,
        "column_2": None,
        "score": float(value),
        "counted": True,
    }


def _quality(wh, table, synthetic: pa.Table, kinds):
    """SQL quality report of the synthetic rows against the whole source table."""
    wh.write(SCRATCH, synthetic)
    try:
        return q.quality_report(wh, table, SCRATCH, kinds)
    finally:
        wh.execute(f"drop table if exists {qualified(SCRATCH)}")


def _output(schema: pa.Schema, synthetic: pa.Table, version: str) -> pa.Table:
    """The source's columns in order (left-out ones as nulls) + synthetic_id, model_version."""
    n = synthetic.num_rows
    arrays, fields = [], []
    for f in schema:
        if f.name in synthetic.column_names:
            col = synthetic[f.name]
            arrays.append(col)
            fields.append(pa.field(f.name, col.type))
        else:
            arrays.append(pa.nulls(n, type=f.type))
            fields.append(f)
    arrays += [pa.array(np.arange(1, n + 1, dtype=np.int64)), pa.array([version] * n)]
    fields += [pa.field("synthetic_id", pa.int64()), pa.field("model_version", pa.string())]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def format_quality(summary: dict) -> list[tuple[str, str]]:
    """(name, value) lines the CLI prints as its quality table."""

    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    lines = [
        ("rows written", f"{summary['rows_written']:,} -> {summary['output_table']}"),
        ("model version", summary["model_version"]),
        ("quality score", f(summary["quality_score"])),
        ("  column shapes", f(summary["column_shapes"])),
        ("  column pair trends", f(summary["column_pair_trends"])),
    ]
    if "utility" in summary:
        u = summary["utility"]
        lines += [
            ("TSTR AUC (synthetic -> real)", f(u["tstr_auc"])),
            ("TRTR AUC (real -> real)", f(u["trtr_auc"])),
            (
                "label rate real / synthetic",
                f"{f(u['real_label_rate'])} / {f(u['synthetic_label_rate'])}",
            ),
        ]
    if "privacy" in summary:
        p = summary["privacy"]
        lines += [
            (
                "DCR median synthetic / holdout",
                f"{f(p['dcr_synthetic_median'])} / {f(p['dcr_holdout_median'])}",
            ),
            (
                "exact copies synthetic / holdout",
                f"{p['exact_copy_share_synthetic']:.2%} / {p['exact_copy_share_holdout']:.2%}",
            ),
        ]
    if summary.get("privacy_filter_dropped"):
        lines.append(("dropped by privacy filter", str(summary["privacy_filter_dropped"])))
    return lines
