"""Synthetic customers on a warehouse: read a table, train the GAN, write rows and quality.

:func:`run_synthesizer` trains a :class:`~pyprofile.models.synth.Synthesizer` on a table
(minus a holdout kept for the utility and privacy metrics), samples synthetic rows, measures
their quality in SQL and, in one transaction, registers the model and writes
``ml.synthetic_customers`` and ``ml.synthetic_quality``. Called by the CLI (``pyprofile
synth``) and the dbt Python model ``run_synthesizer``.
"""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from pyprofile.errors import InputError
from pyprofile.flows.publish import ModelEntry, observation_date, publish
from pyprofile.models.data import sample_rows
from pyprofile.models.synth import quality as q
from pyprofile.models.synth.synthesizer import Synthesizer
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.quality import quality_report

MIN_HOLDOUT_ROWS = 50
QUALITY_ROWS = 100_000  # rows of each side the SQL quality report compares, at most
PRIVACY_FILTER_EXTRA = 0.15  # sample this share more, so that filtering still leaves `rows`


def _split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_hold = int(round(n * holdout)) if n * holdout >= MIN_HOLDOUT_ROWS else 0
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


def _read(wh: Warehouse, table: str) -> tuple[pa.Table, list[str]]:
    """The source table and its all-null columns (left out of the model, written as nulls)."""
    source = wh.read(table)
    n = source.num_rows
    if n == 0:
        raise InputError(f"table {table} is empty (0 rows): nothing to learn from")
    all_null = [c for c in source.column_names if source[c].null_count == n]
    if all_null:
        warnings.warn(
            f"{table}: column(s) {', '.join(all_null)} are null on all {n} rows; "
            "left out of the model and written as nulls",
            stacklevel=3,
        )
    return source, all_null


def run_synthesizer(
    wh: Any,
    table: str = tables.FEATURES,
    rows: int | None = None,
    *,
    conditions: dict | None = None,
    label: str | None = None,
    privacy_filter: bool = False,
    holdout: float = 0.2,
    random_state: int = 0,
    device: str = "auto",
    verbose: bool = False,
    **synthesizer_params: Any,
) -> dict:
    """Train on ``table`` (minus a ``holdout`` share kept for utility and privacy metrics), write
    ``rows`` synthetic rows (default: as many as the table has) to ``ml.synthetic_customers`` and
    the quality report to ``ml.synthetic_quality`` in one transaction; returns a summary dict.

    Other keyword arguments (e.g. ``epochs``, ``batch_size``) go to :class:`Synthesizer`; unset
    ones keep its defaults. ``conditions`` ({column: value}) makes every synthetic row carry
    those values. ``privacy_filter`` drops synthetic rows closer to a real training row than
    the held-out rows' 5th percentile. ``epsilon`` (and ``delta``) make the fit differentially
    private (:mod:`pyprofile.models.synth.dp`); what it spent goes to the quality table (group
    ``privacy``: ``dp_epsilon``, ``dp_delta``) and the registry.
    """
    wh = Warehouse.open(wh)
    source, all_null = _read(wh, table)
    n = source.num_rows
    rows = n if rows is None else int(rows)
    _check_request(rows, privacy_filter, synthesizer_params)
    data = source.drop_columns(all_null)
    train_idx, hold_idx = _split(n, holdout, random_state)
    params = {k: v for k, v in synthesizer_params.items() if v is not None}
    model = Synthesizer(random_state=random_state, device=device, verbose=verbose, **params)
    train = data.take(pa.array(train_idx))
    fit_seconds, notes = _fit(model, train, label)
    frames = _frames(model, train, data.take(pa.array(hold_idx)), label)
    t0 = time.perf_counter()
    synthetic, dropped = _sample(model, rows, conditions, privacy_filter, frames)
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
        "sample_seconds": time.perf_counter() - t0,
        "privacy_filter_dropped": dropped,
        "notes": notes,
        "dp_epsilon": model.epsilon_,
        "dp_delta": model.delta_,
    }
    metric_rows = _evaluate(wh, data, model, synthetic, frames, summary)
    return _publish(wh, model, source.schema, synthetic, metric_rows, summary)


def _check_request(rows: int, privacy_filter: bool, params: dict) -> None:
    if rows < 1:
        raise InputError(f"rows must be at least 1, got {rows}")
    if privacy_filter and params.get("epsilon") is not None:
        raise InputError(
            "--privacy-filter compares synthetic rows with real ones, which the epsilon "
            "guarantee does not cover: use one or the other"
        )


def _fit(model: Synthesizer, train: pa.Table, label: str | None) -> tuple[float, list[str]]:
    """Fit ``model``; the seconds it took and the warnings it raised (kept for the summary)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, label=label)
    return time.perf_counter() - t0, [str(w.message) for w in caught]


def _frames(model: Synthesizer, train: pa.Table, holdout: pa.Table, label) -> dict:
    """The training rows the model learnt from (a sample above ``max_rows``; all of them for a
    private fit, whose sample is secret) and the held-out rows, for privacy and utility."""
    keep = None if model.epsilon is not None else model.learning_sample(train, label)
    learned = train if keep is None else train.take(pa.array(keep))
    return {
        "train": learned.to_pandas(),
        "holdout": holdout.to_pandas() if holdout.num_rows else None,
    }


def _sample(
    model: Synthesizer, rows: int, conditions, privacy_filter: bool, frames: dict
) -> tuple[pa.Table, int]:
    """``rows`` synthetic rows (after the privacy filter, when asked) and how many it dropped."""
    hold_df = frames["holdout"]
    extra = (
        int(np.ceil(rows * PRIVACY_FILTER_EXTRA)) if privacy_filter and hold_df is not None else 0
    )
    synthetic = model.sample_arrow(rows + extra, conditions)
    if not extra:
        return synthetic, 0
    keep = q.privacy_filter(frames["train"], hold_df, synthetic.to_pandas(), model.column_kinds())
    chosen = np.flatnonzero(keep)[:rows]
    return synthetic.take(pa.array(chosen)), int((~keep).sum())


def _evaluate(wh, source: pa.Table, model: Synthesizer, synthetic, frames, summary) -> list:
    """Quality (SQL), utility and privacy; adds them to ``summary``; the quality table rows."""
    kinds = model.column_kinds()
    report = _quality(wh, source, synthetic, kinds)
    summary.update(
        quality_score=report.score,
        column_shapes=report.column_shapes,
        column_pair_trends=report.column_pair_trends,
    )
    metric_rows = report.as_rows()
    if summary["dp_epsilon"] is not None:
        metric_rows += [_metric("privacy", k, summary[k]) for k in ("dp_epsilon", "dp_delta")]
    train_df, hold_df = frames["train"], frames["holdout"]
    if hold_df is not None:
        synth_df = synthetic.to_pandas()
        if summary["label"] is not None:
            summary["utility"] = q.utility(train_df, hold_df, synth_df, kinds, summary["label"])
            metric_rows += [_metric("utility", k, v) for k, v in summary["utility"].items()]
        summary["privacy"] = q.privacy(train_df, hold_df, synth_df, kinds)
        metric_rows += [_metric("privacy", k, v) for k, v in summary["privacy"].items()]
    return metric_rows


def _publish(wh, model: Synthesizer, schema, synthetic, metric_rows, summary) -> dict:
    """Register the model and write the synthetic rows and their quality in one transaction."""
    keys = ("quality_score", "column_shapes", "column_pair_trends", "dp_epsilon", "dp_delta")
    metrics = {k: summary[k] for k in keys if summary[k] is not None}
    params = {
        **model.get_params(),
        "label": model.label_,
        "columns": list(model.transformer_.schema_.names),
    }
    entry = ModelEntry(tables.SYNTHESIZER_MODEL, model.to_artifact(), params, metrics)
    created = datetime.now(UTC).replace(tzinfo=None)
    as_of = observation_date(wh, summary["table"])
    common = {"model_version": entry.version, "as_of_date": as_of, "created_at": created}
    quality = pa.Table.from_pylist(
        [{**common, "source_table": summary["table"], "scope": "table", **r} for r in metric_rows],
        schema=QUALITY_SCHEMA,
    )
    output = _output(schema, synthetic, entry.version, as_of)
    publish(
        wh,
        models=[entry],
        tables={tables.SYNTHETIC: output, tables.SYNTHETIC_QUALITY: quality},
    )
    summary.update(
        model_version=entry.version,
        quality_table=tables.SYNTHETIC_QUALITY,
        output_table=tables.SYNTHETIC,
    )
    return summary


QUALITY_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("as_of_date", pa.date32()),
        ("source_table", pa.string()),
        ("scope", pa.string()),  # "table": one table imitated; "warehouse": a whole warehouse
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


def _quality(wh: Warehouse, source: pa.Table, synthetic: pa.Table, kinds: dict[str, str]):
    """SQL quality report of the synthetic rows against the source table, each cut to a seeded
    sample of QUALITY_ROWS rows when larger (the scores are estimates whose sampling error is
    then below a few thousandths, and their cost stops growing with the table); both are only
    registered with the connection, never written to the file."""
    real, fake = (_at_most(t, QUALITY_ROWS, seed) for seed, t in enumerate((source, synthetic)))
    with wh.scratch(real) as real_name, wh.scratch(fake) as fake_name:
        return quality_report(wh, real_name, fake_name, kinds)


def _at_most(table: pa.Table, rows: int, seed: int) -> pa.Table:
    keep = sample_rows(table.num_rows, rows, seed)
    return table if keep is None else table.take(pa.array(keep))


def _output(schema: pa.Schema, synthetic: pa.Table, version: str, as_of) -> pa.Table:
    """The source's columns in order (left-out ones as nulls) + synthetic_id, model_version
    and the ``as_of_date`` of the source (which replaces a generated one)."""
    n = synthetic.num_rows
    arrays, fields = [], []
    for f in schema:
        if f.name == "as_of_date":
            continue
        if f.name in synthetic.column_names:
            col = synthetic[f.name]
            arrays.append(col)
            fields.append(pa.field(f.name, col.type))
        else:
            arrays.append(pa.nulls(n, type=f.type))
            fields.append(f)
    arrays += [
        pa.array(np.arange(1, n + 1, dtype=np.int64)),
        pa.array([version] * n, pa.string()),
        pa.array([as_of] * n, pa.date32()),
    ]
    fields += [
        pa.field("synthetic_id", pa.int64()),
        pa.field("model_version", pa.string()),
        pa.field("as_of_date", pa.date32()),
    ]
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
    if summary.get("dp_epsilon") is not None:
        dp = f"epsilon {summary['dp_epsilon']:.3g}, delta {summary['dp_delta']:.3g}"
        lines.append(("differential privacy", dp))
    if summary.get("privacy_filter_dropped"):
        lines.append(("dropped by privacy filter", str(summary["privacy_filter_dropped"])))
    return lines
