from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from pyprofile.cli import app
from pyprofile.warehouse import Warehouse

runner = CliRunner()


def test_demo_data_then_load_and_errors(tmp_path):
    db = tmp_path / "w.duckdb"
    out = runner.invoke(app, ["demo-data", "--db", str(db), "--customers", "200", "--seed", "1"])
    assert out.exit_code == 0, out.output
    assert "raw.orders" in out.output
    with Warehouse.open(db) as wh:
        assert wh.count("raw.customers") == 200

    csv = tmp_path / "orders.csv"
    csv.write_text("CustID,Date,Total\nc1,2024-01-02,3.5\n")
    out = runner.invoke(
        app,
        [
            "load",
            str(csv),
            "--table",
            "orders",
            "--db",
            str(tmp_path / "own.duckdb"),
            "--map",
            "customer_id=CustID",
            "--map",
            "ordered_at=Date",
            "--map",
            "amount=Total",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "customers are derived from orders" in out.output


def test_user_errors_are_one_line_with_nonzero_exit(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("CustID,Date\nc1,2024-01-02\n")
    out = runner.invoke(
        app,
        [
            "load",
            str(csv),
            "--table",
            "orders",
            "--db",
            str(tmp_path / "w.duckdb"),
            "--map",
            "customer_id=CustID",
            "--map",
            "ordered_at=Date",
        ],
    )
    assert out.exit_code == 1
    assert "error:" in out.output and "amount" in out.output
    assert "Traceback" not in out.output
    out = runner.invoke(app, ["load", str(csv), "--table", "orders", "--map", "oops"])
    assert out.exit_code == 1 and "contract_column=file_column" in out.output
    out = runner.invoke(app, ["features", "--db", str(tmp_path / "empty.duckdb")])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "raw" in out.output and "does not exist" in out.output


def _one_error_line(out) -> str:
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.output
    return lines[0]


def test_bad_options_and_files_are_one_clear_line(tmp_path):
    missing = tmp_path / "missing.duckdb"
    line = _one_error_line(runner.invoke(app, ["report", "--db", str(missing)]))
    assert "does not exist" in line and not missing.exists()  # no empty file left behind
    not_duckdb = tmp_path / "orders.csv"
    not_duckdb.write_text("a,b\n1,2\n")
    line = _one_error_line(runner.invoke(app, ["segment", "--db", str(not_duckdb)]))
    assert "orders.csv" in line
    db = tmp_path / "w.duckdb"
    assert runner.invoke(app, ["demo-data", "--db", str(db), "--customers", "20"]).exit_code == 0
    line = _one_error_line(
        runner.invoke(app, ["features", "--db", str(db), "--as-of", "2025-13-45"])
    )
    assert "--as-of '2025-13-45'" in line
    line = _one_error_line(
        runner.invoke(app, ["run", "--db", str(db), "--var", "event_types=[a, b"])
    )
    assert "--var event_types=" in line
    line = _one_error_line(runner.invoke(app, ["demo-data", "--db", str(db), "--customers", "0"]))
    assert "customers must be at least 1, got 0" in line
    line = _one_error_line(
        runner.invoke(app, ["demo-data", "--db", str(db), "--end-date", "yesterday"])
    )
    assert "--end-date 'yesterday'" in line


def test_a_dbt_failure_is_one_line_with_the_log(tmp_path):
    db = tmp_path / "w.duckdb"
    with Warehouse.open(db) as wh:
        wh.execute("create schema raw")
        wh.execute(
            "create table raw.orders as select 'o1' as order_id, 'c1' as customer_id, "
            "timestamp '2024-01-01' as ordered_at"
        )
    out = runner.invoke(app, ["features", "--db", str(db)])
    assert out.exit_code == 1 and "Traceback" not in out.output
    errors = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.output
    assert "lacks required column 'amount'" in errors[0] and "full log: " in errors[0]
    assert len(out.output.splitlines()) < 10  # progress and the failed node, not dbt's log


def test_no_valid_order_is_one_line_naming_the_cause(tmp_path):
    db = tmp_path / "w.duckdb"
    assert runner.invoke(app, ["demo-data", "--db", str(db), "--customers", "30"]).exit_code == 0
    with Warehouse.open(db) as wh:
        wh.execute("delete from raw.orders")
    out = runner.invoke(app, ["features", "--db", str(db)])
    errors = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert out.exit_code == 1 and len(errors) == 1, out.output
    assert "no valid order to take the observation date (as_of) from" in errors[0]
    assert "pass --as-of" in errors[0]


def test_version_help_and_tables_in_a_pipe():
    from pyprofile import __version__
    from pyprofile.cli import Table, console

    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"pyprofile {__version__}"
    helped = runner.invoke(app, ["load", "--help"]).output
    assert "--map COLUMN=FILE_COLUMN" in helped and "<bool>" not in helped
    from pyprofile.models.recommend import METHODS

    helped = " ".join(
        runner.invoke(app, ["recommend", "--help"], terminal_width=200).output.split()
    )
    listed = re.search(r"--method METHOD (.*?) \(", helped)
    assert listed is not None, helped
    assert set(re.findall(r"\w+", listed.group(1))) - {"or"} == {"auto", *METHODS}
    table = Table(title="models")
    for col in ("model", "estimator", "calibration", "roc_auc"):
        table.add_column(col)
    table.add_row("churn", "gbm", "isotonic", "0.812")
    with console.capture() as captured:
        console.print(table, width=40)
    text = captured.get()
    assert "…" not in text and "estimat" in text and "isotonic" in text


@pytest.mark.parametrize("name", ["raw", "ml", "Features"])
def test_a_warehouse_file_named_like_a_schema_is_one_clear_line(tmp_path, name):
    """DuckDB cannot tell the file raw.duckdb from the schema raw ("ambiguous reference")."""
    db = tmp_path / f"{name}.duckdb"
    line = _one_error_line(runner.invoke(app, ["demo-data", "--db", str(db), "--customers", "5"]))
    assert str(db) in line and f"schema {name.lower()}" in line and "rename" in line
