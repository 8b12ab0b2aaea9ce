"""End to end: the README's main command (pyprofile demo) on a small demo warehouse."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from pyprofile.cli import app
from pyprofile.dbt import run_dbt
from pyprofile.warehouse import Warehouse

FAST = ["--var", "synth_epochs=2", "--var", "segment_epochs=3"]
OUTPUTS = {
    # DESIGN.md's output contract: object -> columns that must be there
    "features.customer_features": [
        "customer_id",
        "recency_days",
        "frequency",
        "r_score",
        "rfm_segment",
    ],
    "ml.customer_segments": [
        "customer_id",
        "segment_id",
        "segment_name",
        "distance_to_centroid",
        "model_version",
    ],
    "ml.segment_profiles": ["segment_id", "segment_name"],
    "ml.customer_scores": [
        "customer_id",
        "churn_probability",
        "purchase_probability",
        "p_alive",
        "expected_purchases_90d",
        "clv_12m",
        "model_version",
    ],
    "ml.synthetic_customers": ["synthetic_id", "model_version", "recency_days"],
    "ml.synthetic_quality": [],
    "ml.recommendations": ["customer_id", "rank", "product_id", "score", "reason", "model_version"],
    "ml.product_similarities": [],
    "ml.model_registry": [
        "name",
        "version",
        "trained_at",
        "params",
        "metrics",
        "artifact",
        "checksum",
    ],
    "marts.customer_profiles": [
        "customer_id",
        "segment_name",
        "churn_probability",
        "clv_12m",
        "top_product_1",
        "rfm_segment",
    ],
    "marts.segment_summary": ["segment_id", "customers", "revenue_share"],
}


@pytest.fixture(scope="module")
def pipeline_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "demo.duckdb"
    out = CliRunner().invoke(app, ["demo", "--db", str(path), "--customers", "600", *FAST])
    assert out.exit_code == 0, out.output
    assert "ml.customer_scores" in out.output  # the closing summary lists what was written
    assert "ml steps" in out.output and "slowest steps" in out.output  # status, wall time
    assert "peak memory of this process" in out.output
    return path


def _digest(wh: Warehouse, table: str, order: str) -> str:
    rows = wh.query(f"select * from {table} order by {order}").to_pandas()
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()


def test_every_output_exists_with_plausible_content(pipeline_db):
    with Warehouse.open(pipeline_db) as wh:
        for table, columns in OUTPUTS.items():
            assert wh.exists(table), table
            assert wh.count(table) > 0, table
            missing = set(columns) - set(wh.columns(table))
            assert not missing, (table, missing)
        n = wh.count("features.customer_features")
        assert wh.count("marts.customer_profiles") == n
        assert wh.count("ml.customer_scores") == n
        # the marts join the ml outputs written in the same build (not stale or empty)
        filled = wh.query(
            "select count(segment_id) s, count(churn_probability) c, count(top_product_1) r "
            "from marts.customer_profiles"
        ).to_pylist()[0]
        assert filled == {"s": n, "c": n, "r": n}
        assert wh.count("ml.customer_segments") == n
        bad = wh.scalar("""select count(*) from ml.customer_scores where not (
            churn_probability between 0 and 1 and purchase_probability between 0 and 1
            and p_alive between 0 and 1 and clv_12m >= 0)""")
        assert bad == 0
        # segment shares add up, every customer has recommendations
        assert wh.scalar("select sum(customer_share) from marts.segment_summary") == pytest.approx(
            1
        )
        assert wh.scalar("select count(distinct customer_id) from ml.recommendations") == n
        # persisted scoring macros work in plain SQL
        assert (
            wh.scalar(
                "select count(*) from duckdb_functions() where function_name = "
                "'rfm_segment' or function_name like 'segment_of%'"
            )
            >= 1
        )


ML_OUTPUTS = {
    "ml.customer_segments": "segmenter",
    "ml.segment_profiles": "segmenter",
    "ml.customer_scores": "customer_scores",
    "ml.synthetic_customers": "synthesizer",
    "ml.synthetic_quality": "synthesizer",
    "ml.recommendations": "recommender",
    "ml.product_similarities": "recommender",
}


def test_every_ml_output_names_its_date_and_model(pipeline_db):
    """Each ml table says which as_of it was computed for and which registered model wrote it."""
    with Warehouse.open(pipeline_db) as wh:
        as_of = wh.scalar("select max(as_of_date) from features.customer_features")
        for table, model in ML_OUTPUTS.items():
            stamps = wh.query(f"select distinct as_of_date, model_version from {table}").to_pylist()
            latest = wh.scalar(
                "select version from ml.model_registry where name = ? "
                "order by trained_at desc limit 1",
                [model],
            )
            assert stamps == [{"as_of_date": as_of, "model_version": latest}], table


def test_rerun_is_idempotent(pipeline_db):
    tables = {
        "features.customer_features": "customer_id",
        "ml.customer_segments": "customer_id",
        "ml.customer_scores": "customer_id",
        "ml.recommendations": "customer_id, rank",
    }
    registry = "select name, version from ml.model_registry order by all"
    with Warehouse.open(pipeline_db) as wh:
        before = {t: _digest(wh, t, o) for t, o in tables.items()}
        versions = wh.query(registry).to_pylist()
    run_dbt("build", pipeline_db, vars={"synth_epochs": 2, "segment_epochs": 3})
    with Warehouse.open(pipeline_db) as wh:
        after = {t: _digest(wh, t, o) for t, o in tables.items()}
        new = [r for r in wh.query(registry).to_pylist() if r not in versions]
    assert [t for t in tables if before[t] != after[t]] == []
    assert new == []  # same content, same model versions: nothing new in the registry


def test_every_readme_sql_example_runs(pipeline_db):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    examples = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    assert len(examples) >= 5
    with Warehouse.open(pipeline_db, read_only=True) as wh:
        for sql in examples:
            result = wh.query(sql.strip().rstrip(";"))
            assert result.num_columns >= 2, sql
    # the macro example agrees with the stored columns
    with Warehouse.open(pipeline_db, read_only=True) as wh:
        mismatched = wh.scalar(
            "select count(*) from features.customer_features where has_purchased "
            "and ml.rfm_segment(r_score, f_score, m_score) <> rfm_segment"
        )
    assert mismatched == 0


def test_segment_macro_equals_python_assignment_on_every_customer(pipeline_db):
    """The persisted SQL scoring chain gives exactly the written segments, for all customers."""
    with Warehouse.open(pipeline_db, read_only=True) as wh:
        n = wh.count("ml.customer_segments")
        differ = wh.scalar(
            "select count(*) from ml.customer_segments s "
            "join ml.segment_table('features.customer_features') t using (customer_id) "
            "where s.segment_id <> t.segment_id"
        )
        matched = wh.scalar(
            "select count(*) from ml.customer_segments s "
            "join ml.segment_table('features.customer_features') t using (customer_id)"
        )
    assert matched == n and differ == 0


def test_thin_data_orders_only_skips_what_needs_more(tmp_path):
    """A real, thin export (CDNOW: orders without ids, no customers, items, products or events):
    the whole build succeeds; the recommender is skipped with its reason; the marts still build."""
    import os

    import lifetimes
    import pandas as pd

    from pyprofile.ingest import load_file

    src = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    df = pd.read_csv(src, sep=r"\s+", header=None, names=["i", "cust", "date", "qty", "amount"])
    csv = tmp_path / "orders.csv"
    df[["cust", "date", "amount"]].to_csv(csv, index=False)
    db = tmp_path / "thin.duckdb"
    load_file(db, "orders", csv, mapping={"customer_id": "cust", "ordered_at": "date"})
    run_dbt("build", db, vars={"synth_epochs": 2, "segment_epochs": 3})
    with Warehouse.open(db, read_only=True) as wh:
        runs = {
            r["model"]: r
            for r in wh.query(
                "select model, status, message from ml.run_recommendations union all "
                "select model, status, message from ml.run_scoring union all "
                "select model, status, message from ml.run_segmentation"
            ).to_pylist()
        }
        assert runs["recommender"]["status"] == "skipped"
        assert "no interactions" in runs["recommender"]["message"]
        assert runs["customer_scores"]["status"] == "ok"
        assert runs["segmenter"]["status"] == "ok"
        n = df.cust.nunique()
        assert wh.count("marts.customer_profiles") == n
        assert wh.scalar("select count(top_product_1) from marts.customer_profiles") == 0
        assert wh.scalar("select count(clv_12m) from marts.customer_profiles") > 0


def test_outputs_have_bi_safe_types_in_a_duckdb_1x_client(pipeline_db, tmp_path):
    """What BI tools read: every column of every ml.* and marts.* output has one of the six
    BI-safe types, as a DuckDB 1.x client sees them (the registry, holding artifacts, aside)."""
    import os
    import shutil
    import subprocess

    from pyprofile.warehouse.contracts import BI_TYPES, CONTRACTS

    query = (
        "select table_schema || '.' || table_name, column_name, data_type "
        "from information_schema.columns where table_schema in ('ml', 'marts') "
        "and table_name <> 'model_registry' order by all"
    )
    old_python = os.environ.get("PYPROFILE_DUCKDB1_PYTHON")
    if old_python:  # scripts/test.sh provides one; CI always has it
        with Warehouse.open(pipeline_db) as wh:
            wh.execute("checkpoint")  # what a 1.x client opens: a file without a WAL
        copy = tmp_path / "demo.duckdb"
        shutil.copy(pipeline_db, copy)
        code = (
            "import duckdb, json, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "assert duckdb.__version__.startswith('1.'); "
            f"print(json.dumps(c.execute({query!r}).fetchall()))"
        )
        out = subprocess.run([old_python, "-c", code, str(copy)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        rows = [tuple(r) for r in json.loads(out.stdout)]
    else:
        with Warehouse.open(pipeline_db, read_only=True) as wh:
            rows = [tuple(r.values()) for r in wh.query(query).to_pylist()]
    assert len({table for table, _, _ in rows}) >= 12
    unsafe = [r for r in rows if r[2] not in BI_TYPES]
    assert unsafe == []
    declared = {(t, c): typ for t, cols in CONTRACTS.items() for c, typ in cols.items()}
    names = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "date32[day]": "DATE"}
    for table, column, data_type in rows:
        if (table, column) in declared:
            assert names[str(declared[table, column])] == data_type, (table, column)
