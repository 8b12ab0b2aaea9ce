"""pyprofile as a dbt package: a fresh dbt project that lists it in packages.yml gets, from
`dbt deps` and `dbt build`, the same tables as the bundled project (and can build on them)."""

from __future__ import annotations

import textwrap

import pytest

from pyprofile.resources import project_dir

SCHEMA_MACRO = """\
{#- pyprofile's layers keep their own schemas (staging, features, ml, marts) -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if node.package_name == 'pyprofile' -%}
        {{ pyprofile.generate_schema_name(custom_schema_name, node) }}
    {%- else -%}
        {{ default__generate_schema_name(custom_schema_name, node) }}
    {%- endif -%}
{%- endmacro %}
"""


def _project(root, db) -> None:
    (root / "macros").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "dbt_project.yml").write_text(
        textwrap.dedent(
            """\
            name: analytics
            version: "1.0.0"
            config-version: 2
            profile: analytics
            model-paths: [models]
            macro-paths: [macros]
            vars:
              synth_epochs: 2
              segment_epochs: 3
            """
        )
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {project_dir()}\n")
    (root / "profiles.yml").write_text(
        textwrap.dedent(
            f"""\
            analytics:
              target: dev
              outputs:
                dev:
                  type: duckdb
                  path: {db}
                  threads: 2
            """
        )
    )
    (root / "macros" / "generate_schema_name.sql").write_text(SCHEMA_MACRO)
    # the user's own model on top of pyprofile's: refs across the package boundary
    (root / "models" / "loyal_customers.sql").write_text(
        "-- depends_on: {{ ref('pyprofile', 'run_scoring') }}\n"
        "select f.customer_id, s.churn_probability\n"
        "from {{ ref('pyprofile', 'customer_features') }} as f\n"
        "join ml.customer_scores as s using (customer_id)\n"
        "where f.order_count >= 3\n"
    )


def _dbt(*args: str) -> None:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(list(args))
    failed = [
        f"{r.node.name}: {r.message}"
        for r in getattr(result.result, "results", None) or []
        if str(r.status) in ("error", "fail")
    ]
    assert result.success, f"dbt {args[0]} failed: {result.exception or failed}"


def test_a_fresh_project_installs_pyprofile_and_builds(tmp_path):
    from pyprofile.demo import generate_demo
    from pyprofile.warehouse import Warehouse

    root, db = tmp_path / "analytics", tmp_path / "shop.duckdb"
    _project(root, db)
    generate_demo(db, customers=300, seed=5)
    common = ["--project-dir", str(root), "--profiles-dir", str(root)]
    common += ["--log-path", str(tmp_path / "logs"), "--log-level", "none"]
    _dbt("deps", *common)
    _dbt("build", *common, "--select", "+loyal_customers", "+rejected_rows")
    wh = Warehouse.open(db)
    try:
        n = wh.scalar("select count(*) from features.customer_features")
        scored = wh.scalar("select count(*) from ml.customer_scores")
        loyal = wh.query("select * from main.loyal_customers").to_pandas()
        functions = wh.scalar(
            "select count(*) from duckdb_functions() where schema_name = 'ml' "
            "and function_name = 'churn_score'"
        )
    finally:
        wh.close()
    assert n > 250 and scored == n
    assert len(loyal) > 0 and loyal["churn_probability"].between(0, 1).all()
    assert functions >= 1


@pytest.fixture(autouse=True)
def _no_db_env(monkeypatch):
    """The package route must not depend on the bundled project's environment variable."""
    monkeypatch.delenv("PYPROFILE_DB", raising=False)
