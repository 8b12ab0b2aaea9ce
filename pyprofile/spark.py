"""pyprofile on Apache Spark: dbt-spark builds staging and features, the ml flows run through the
engine seam on the same SparkSession, then dbt-spark builds the marts.

dbt-spark cannot run dbt Python models without Databricks, so the four ``run_*`` steps that dbt
runs as Python models on DuckDB run here instead, with the same settings (the same dbt vars)
and the same run logs (``ml.run_synthesizer``, ...). The session is the one dbt-spark opens from
the ``spark`` target of the dbt profile, so a cluster is configuration; locally the profile
keeps Parquet tables and a Derby metastore under ``$PYPROFILE_SPARK_DIR``
(:func:`pyprofile.warehouse.spark.local_conf`).

    pyprofile demo --engine spark --spark-dir DIR [--customers N]   # run_demo
    pyprofile run --engine spark [--spark-dir DIR] [--var NAME=VALUE ...]
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyprofile.dbt import NodeResult, config_value, publish_static_functions, run_dbt, run_step
from pyprofile.flows.recommendations import pipeline_inputs, run_recommendations
from pyprofile.flows.scoring import run_scoring
from pyprofile.flows.segmentation import run_segmentation
from pyprofile.flows.synthesizer import run_synthesizer
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.spark import SparkSettings, SparkWarehouse

SPARK_DIR_ENV = "PYPROFILE_SPARK_DIR"
TARGET = "spark"
# The demo's raw tables (and the hidden truth tests compare segments with).
DEMO_TABLES = [
    "raw.customers",
    "raw.orders",
    "raw.order_items",
    "raw.products",
    "raw.events",
    "demo_truth.customer_types",
]
# dbt_project.yml's run_synthesizer config: the bundled pipeline trains the GAN for 100 epochs
# of at most 2000 steps in all unless the synth_epochs / synth_max_steps vars say otherwise (the
# library's own defaults are longer).
PIPELINE_SYNTH_EPOCHS = 100
PIPELINE_SYNTH_MAX_STEPS = 2000
# The Spark demo's synthesizer learns raw.customers unless the synth_source_table var says
# otherwise: the quality report's column-pair queries over the wide feature table take Spark
# (Catalyst) many minutes to plan, where DuckDB runs them in seconds.
DEMO_VARS = {"synth_source_table": "raw.customers"}
_UNSET = (None, "", "none", "None", "null")


@dataclass
class SparkRun:
    """What :func:`run_spark` did: dbt's nodes, each ml step's run log and the timings (s)."""

    nodes: list[NodeResult] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped_functions: dict[str, str] = field(default_factory=dict)


@contextmanager
def _environment(spark_dir: str | os.PathLike | None) -> Iterator[None]:
    """dbt's target is ``spark`` (``DBT_TARGET``) and, when given, the profile's local
    directory is ``spark_dir``; both restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("DBT_TARGET", SPARK_DIR_ENV)}
    os.environ["DBT_TARGET"] = TARGET
    if spark_dir is not None:
        os.environ[SPARK_DIR_ENV] = str(Path(spark_dir).resolve())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_local(spark_dir: str | os.PathLike) -> SparkWarehouse:
    """The local Spark warehouse under ``spark_dir`` (created if needed), with the settings the
    dbt profile's ``spark`` target uses for it."""
    Path(spark_dir).mkdir(parents=True, exist_ok=True)
    return SparkWarehouse.connect(SparkSettings(Path(spark_dir)))


def load_demo(spark_dir: str | os.PathLike, **options: Any) -> dict[str, int]:
    """Generate the demo warehouse (``pyprofile.demo.generate_demo`` options: ``customers``,
    ``seed``, ...) and load its raw tables into the local Spark warehouse under ``spark_dir``
    (Parquet); returns rows per table. Replaces an earlier demo's tables."""
    from pyprofile.demo import generate_demo

    wh = open_local(spark_dir)
    with tempfile.TemporaryDirectory(prefix="pyprofile-demo-") as tmp:
        duck = Path(tmp) / "demo.duckdb"
        generate_demo(duck, **options)
        with Warehouse.open(duck, read_only=True) as source:
            data = {name: source.read(name) for name in DEMO_TABLES}
    return wh.write_many(data)


def run_demo(
    spark_dir: str | os.PathLike,
    *,
    vars: dict[str, Any] | None = None,
    on_loaded: Callable[[dict[str, int]], None] | None = None,
    **options: Any,
) -> SparkRun:
    """The demo on a local Spark warehouse under ``spark_dir``: :func:`load_demo` (``options``:
    ``customers``, ``seed``), then :func:`run_spark` with ``vars`` over :data:`DEMO_VARS`.
    ``on_loaded`` gets the rows loaded per raw table."""
    counts = load_demo(spark_dir, **options)
    if on_loaded is not None:
        on_loaded(counts)
    return run_spark(spark_dir, vars={**DEMO_VARS, **(vars or {})})


def _settings(vars: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each ml step's options from the dbt vars, as dbt_project.yml's ``ml`` configs map them
    (only the ones that are set: every other default is the library's)."""

    def value(name: str, cast: Callable = str, default: Any = None) -> Any:
        raw = vars.get(name, default)
        return None if raw in _UNSET else config_value(raw, cast)

    def k_range(text: str) -> tuple[int, int]:
        lo, hi = (int(x) for x in str(text).split(":"))
        return lo, hi

    seed = value("random_state", int)
    options = {
        "synthesizer": {
            "table": value("synth_source_table"),
            "rows": value("synth_rows", int),
            "epochs": value("synth_epochs", int, PIPELINE_SYNTH_EPOCHS),
            "max_steps": value("synth_max_steps", int, PIPELINE_SYNTH_MAX_STEPS),
            "batch_size": value("synth_batch_size", int),
            "label": value("synth_label"),
            "random_state": seed,
        },
        "segmentation": {
            "currency": value("currency"),
            "k": value("segments_k", int),
            "k_range": value("segments_k_range", k_range),
            "epochs": value("segment_epochs", int),
            "random_state": seed,
        },
        "scoring": {
            "currency": value("currency"),
            "horizon_days": value("horizon_days", int),
            "random_state": seed,
        },
        "recommendations": {
            "k": value("recommendations_k", int),
            "method": value("recommender"),
            "random_state": seed,
        },
    }
    return {
        step: {k: v for k, v in opts.items() if v is not None} for step, opts in options.items()
    }


def _steps(wh: SparkWarehouse, vars: dict[str, Any]) -> list[tuple[str, str, str, Callable, list]]:
    """(run log table, registry step, outputs, fit, extra log columns) of each ml step, in the
    order dbt runs them (recommendations after segmentation: cold starts use the segments)."""
    opts = _settings(vars)
    return [
        (
            tables.RUN_LOGS["synthesizer"],
            tables.SYNTHESIZER_MODEL,
            "ml.synthetic_customers, ml.synthetic_quality",
            lambda: run_synthesizer(wh, **opts["synthesizer"]),
            [],
        ),
        (
            tables.RUN_LOGS["segmentation"],
            tables.SEGMENTER_MODEL,
            "ml.customer_segments, ml.segment_profiles",
            lambda: run_segmentation(wh, **opts["segmentation"]),
            ["k"],
        ),
        (
            tables.RUN_LOGS["scoring"],
            tables.SCORES_MODEL,
            "ml.customer_scores",
            lambda: run_scoring(wh, **opts["scoring"]),
            [],
        ),
        (
            tables.RUN_LOGS["recommendations"],
            tables.RECOMMENDER_MODEL,
            "ml.recommendations, ml.product_similarities",
            lambda: run_recommendations(wh, **opts["recommendations"], **pipeline_inputs(wh)),
            ["method"],
        ),
    ]


def run_spark(
    spark_dir: str | os.PathLike | None = None,
    *,
    vars: dict[str, Any] | None = None,
    on_node: Callable[[NodeResult], None] | None = None,
    on_step: Callable[[str, dict[str, Any]], None] | None = None,
) -> SparkRun:
    """The whole pipeline on Spark: ``dbt build`` of staging and features on the profile's
    ``spark`` target, the ml steps through the engine seam (each one's run log written like
    dbt's), the static scoring functions, then ``dbt build`` of the marts.

    ``spark_dir``: the local warehouse directory (``$PYPROFILE_SPARK_DIR`` for the profile);
    None keeps the profile's own settings (a cluster). ``vars`` are dbt vars (``as_of``,
    ``random_state``, ``segments_k``, ...). A failing dbt node raises
    :class:`~pyprofile.errors.PyprofileError`; an ml step whose input is unusable is skipped
    with its reason, as in ``dbt build`` on DuckDB.
    """
    vars = dict(vars or {})
    out = SparkRun()
    where = Path(spark_dir) if spark_dir is not None else Path.cwd()
    started = time.perf_counter()
    with _environment(spark_dir):
        t0 = time.perf_counter()
        features = run_dbt(
            "build", where, select=["staging", "features"], vars=vars, on_node=on_node
        )
        out.seconds["dbt staging + features"] = time.perf_counter() - t0
        out.nodes += features.nodes
        wh = SparkWarehouse.connect(_active_session())
        for log, step, outputs, fit, extra in _steps(wh, vars):
            t0 = time.perf_counter()
            row = run_step(step, outputs, fit, extra=extra, session=wh)
            wh.write(log, row)
            out.steps[log] = row.to_pylist()[0]
            out.seconds[log] = time.perf_counter() - t0
            if on_step is not None:
                on_step(log, out.steps[log])
        publish_static_functions(wh)
        out.skipped_functions = dict(wh.skipped_functions)
        t0 = time.perf_counter()
        marts = run_dbt("build", where, select=["marts"], vars=vars, on_node=on_node)
        out.seconds["dbt marts"] = time.perf_counter() - t0
        out.nodes += marts.nodes
    out.seconds["total"] = time.perf_counter() - started
    return out


def _active_session():
    """The SparkSession dbt-spark opened in this process (from the profile)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    return spark if spark is not None else SparkSession.builder.getOrCreate()
