"""Spark parity: one small demo built on DuckDB (dbt-duckdb) and on Spark (dbt-spark, then the ml
flows through the engine seam, then the marts) gives the same features, segments, scores and
profiles, and the scoring functions published on Spark reproduce the stored scores.

One SparkSession for the whole test session (Spark is slow to start). Skipped only when Java or
the spark extra is genuinely absent; CI installs both (.ci/run).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

CUSTOMERS = 300
SEED = 7
# The synthesizer learns raw.customers (6 columns): its quality report's pair queries over the
# 60-column feature table take Spark minutes to plan (README, "Spark"); its output is not compared.
VARS = {
    "synth_epochs": 2,
    "synth_source_table": "raw.customers",
    "segment_epochs": 3,
    "random_state": 0,
}
TOLERANCE = 1e-9


def _missing() -> str | None:
    for module in ("pyspark", "dbt.adapters.spark"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install 'pyprofile[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and os.path.exists(java_home)):
        return "no Java for Spark: bash scripts/install_java.sh"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(DuckDB warehouse, Spark warehouse, the Spark run): the same demo on both engines."""
    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo
    from pyprofile.spark import load_demo, open_local, run_spark
    from pyprofile.warehouse import Warehouse

    root = tmp_path_factory.mktemp("spark")
    duck = root / "demo.duckdb"
    t0 = time.perf_counter()
    generate_demo(duck, customers=CUSTOMERS, seed=SEED)
    run_dbt("build", duck, vars=VARS)
    duckdb_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    spark = open_local(root / "spark")
    started = time.perf_counter() - t0
    load_demo(root / "spark", customers=CUSTOMERS, seed=SEED)
    run = run_spark(root / "spark", vars=VARS)
    run.seconds = {"session start": started, **run.seconds, "duckdb (whole build)": duckdb_seconds}
    print("\nspark leg timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    with Warehouse.open(duck, read_only=True) as wh:
        yield wh, spark, run


def _normal(table: pa.Table) -> pd.DataFrame:
    """A table as pandas with engine-neutral types: decimals as floats, times as naive."""
    frame = table.to_pandas()
    for name, field in zip(table.column_names, table.schema, strict=True):
        if pa.types.is_decimal(field.type) or pa.types.is_integer(field.type):
            frame[name] = frame[name].astype("float64")
        elif pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    return frame


def _sorted(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def _assert_same(name: str, duck: pd.DataFrame, spark: pd.DataFrame, key: list[str]) -> None:
    """Same columns (by name), same rows, numbers within TOLERANCE, everything else equal."""
    assert sorted(duck.columns) == sorted(spark.columns), name
    assert len(duck) == len(spark), name
    duck, spark = _sorted(duck, key), _sorted(spark[list(duck.columns)], key)
    for col in duck.columns:
        a, b = duck[col], spark[col]
        if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(
                b.to_numpy(), a.to_numpy(), rtol=TOLERANCE, atol=TOLERANCE, err_msg=f"{name}.{col}"
            )
        else:
            left = a.astype(object).where(a.notna(), None).tolist()
            right = b.astype(object).where(b.notna(), None).tolist()
            assert left == right, f"{name}.{col}"


def _feature_tables(duck) -> list[str]:
    rows = duck.query(
        "select table_name from information_schema.tables where table_schema = 'features' "
        "and table_catalog = current_database() order by 1"
    ).to_pylist()
    return [f"features.{r['table_name']}" for r in rows]


def _key(frame: pd.DataFrame) -> list[str]:
    """Sort by every column that is not a float (then the floats): a total order for the rows."""
    plain = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    return plain + [c for c in frame.columns if c not in plain]


def test_every_feature_table_equals_duckdb(built):
    duck, spark, _ = built
    names = _feature_tables(duck)
    assert "features.customer_features" in names and "features.customer_training" in names
    for name in names:
        a, b = _normal(duck.read(name)), _normal(spark.read(name))
        _assert_same(name, a, b, _key(a))


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("ml.customer_segments", ["customer_id"]),
        ("ml.customer_scores", ["customer_id"]),
        ("marts.customer_profiles", ["customer_id"]),
    ],
)
def test_ml_outputs_and_marts_equal_duckdb(built, table, key):
    """Models trained with the same seeds on the same features make the same assignments and
    the same scores; the marts join them into the same profiles."""
    duck, spark, _ = built
    a, b = _normal(duck.read(table)), _normal(spark.read(table))
    assert len(a) > 0
    _assert_same(table, a, b, key)


def test_every_ml_step_ran(built):
    _, _, run = built
    statuses = {log: row["status"] for log, row in run.steps.items()}
    assert statuses == dict.fromkeys(statuses, "ok"), run.steps
    assert set(run.skipped_functions) == {"ml.segment_table"}  # no Spark SQL counterpart


def _call(name: str, columns: list[str]) -> str:
    return f"{name}({', '.join(f'f.`{c}`' for c in columns)})"


def test_spark_scoring_functions_reproduce_stored_scores(built):
    """The Spark SQL functions, rendered from the same fitted parameters, give the stored
    segment of every customer and its scores within 1e-9."""
    from pyprofile.models.propensity import PropensityModel
    from pyprofile.models.segment import Segmenter
    from pyprofile.warehouse.registry import load_model

    _, spark, _ = built
    segmenter = Segmenter.from_artifact(load_model(spark, "segmenter").artifact)
    churn = PropensityModel.from_artifact(load_model(spark, "churn").artifact)
    lifetimes = ["frequency", "recency", "T"]
    sql = f"""
        select f.customer_id,
            {_call("ml.segment_of", list(segmenter.feature_names_in_))} as segment_id,
            {_call("ml.churn_score", list(churn.feature_names_in_))} as churn_probability,
            {_call("ml.purchase_score", list(churn.feature_names_in_))} as purchase_probability,
            {_call("ml.p_alive", lifetimes)} as p_alive,
            ml.expected_purchases(90, f.frequency, f.recency, f.`T`) as expected_purchases_90d,
            {_call("ml.expected_value", ["frequency", "monetary_value"])}
                as expected_avg_order_value,
            {_call("ml.clv_12m", [*lifetimes, "monetary_value"])} as clv_12m
        from features.customer_features as f
    """
    by_sql = _normal(spark.spark.sql(sql).toArrow())
    stored = _normal(spark.read("ml.customer_scores")).merge(
        _normal(spark.read("ml.customer_segments", ["customer_id", "segment_id"])),
        on="customer_id",
    )
    both = stored.merge(by_sql, on="customer_id", suffixes=("", "_sql"))
    assert len(both) == len(stored) == len(by_sql) > 0
    assert (both["segment_id"] == both["segment_id_sql"]).all()
    for col in ("churn_probability", "purchase_probability", "p_alive", "expected_purchases_90d"):
        np.testing.assert_allclose(both[f"{col}_sql"], both[col], rtol=TOLERANCE, atol=TOLERANCE)
    known = both["clv_12m"].notna()  # CLV is null where the lifetimes summary is
    for col in ("expected_avg_order_value", "clv_12m"):
        np.testing.assert_allclose(
            both.loc[known, f"{col}_sql"], both.loc[known, col], rtol=TOLERANCE, atol=TOLERANCE
        )


def test_rfm_segment_function_keeps_the_apostrophe(built):
    _, spark, _ = built
    value = spark.scalar("select ml.rfm_segment(1, 5, 5)")
    assert value == "Can't Lose Them"


def test_writes_swap_whole_versions(built):
    """A write publishes a view over a complete new version; a failed transaction leaves the
    published version untouched; delete and insert (the registry's) work without DELETE."""
    from pyprofile.errors import WarehouseError

    _, spark, _ = built
    spark.write("scratch_test.t", pa.table({"a": [1, 2, 3]}))
    spark.write("scratch_test.t", pa.table({"a": [4, 5]}))
    # Spark keeps no row order
    assert sorted(spark.read("scratch_test.t")["a"].to_pylist()) == [4, 5]
    with pytest.raises(WarehouseError), spark.transaction():
        spark.write("scratch_test.t", pa.table({"a": [9]}))
        raise WarehouseError("boom")
    # Spark keeps no row order
    assert sorted(spark.read("scratch_test.t")["a"].to_pylist()) == [4, 5]
    with spark.transaction():
        spark.execute('delete from "scratch_test"."t" where a = ?', [4])
        spark.execute('insert into "scratch_test"."t" values (?)', [6])
    assert sorted(spark.read("scratch_test.t")["a"].to_pylist()) == [5, 6]
    assert len(spark.versions("scratch_test.t")) <= 2  # the current one and the one before
    spark.drop(tables=["scratch_test.t"])
    assert not spark.exists("scratch_test.t") and not spark.versions("scratch_test.t")
