from __future__ import annotations

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
