from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from pyprofile.errors import InputError
from pyprofile.ingest import load_file
from pyprofile.warehouse import Warehouse


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "OrderNo,CustID,Date,Total,Extra\n"
        "A1,c1,25/01/2024,10.50,x\n"
        "A2,c1,31/01/2024,20,y\n"
        "A3,c2,13/02/2024,5.25,\n"
        "A4,c2,not a date,7,\n"
        "A5,c3,14/02/2024,abc,\n"
    )
    return path


MAP = {"order_id": "OrderNo", "customer_id": "CustID", "ordered_at": "Date", "amount": "Total"}


def test_load_maps_columns_infers_day_first_dates_and_reports_rejects(tmp_path, orders_csv):
    db = tmp_path / "w.duckdb"
    report = load_file(db, "orders", orders_csv, mapping=MAP)
    assert (report.read, report.loaded, report.rejected) == (5, 3, 2)
    assert report.reasons == {"unparseable ordered_at": 1, "unparseable amount": 1}
    assert "ordered_at: parsed with %d/%m/%Y" in report.notes
    with Warehouse.open(db) as wh:
        rows = wh.query("select * from raw.orders order by order_id").to_pandas()
        assert list(rows.order_id) == ["A1", "A2", "A3"]
        assert rows.ordered_at.iloc[0] == pd.Timestamp("2024-01-25")
        assert float(rows.amount.iloc[0]) == 10.5
        assert "Extra" in rows.columns  # other attributes are kept as text
        rejects = wh.query("select row_number, reason from raw.load_rejects order by 1").to_pylist()
        assert rejects == [
            {"row_number": 4, "reason": "unparseable ordered_at"},
            {"row_number": 5, "reason": "unparseable amount"},
        ]


def test_loading_the_same_file_twice_adds_nothing(tmp_path, orders_csv):
    db = tmp_path / "w.duckdb"
    load_file(db, "orders", orders_csv, mapping=MAP)
    again = load_file(db, "orders", orders_csv, mapping=MAP)
    assert (again.loaded, again.duplicates) == (0, 3)
    with Warehouse.open(db) as wh:
        assert wh.count("raw.orders") == 3
        assert wh.count("raw.load_rejects") == 2


def test_explicit_format_and_generated_order_ids_are_deterministic(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("cust,when,value\nc1,2024.01.02,5\nc1,2024.01.02,5\nc2,2024.01.03,7\n")
    db = tmp_path / "w.duckdb"
    mapping = {"customer_id": "cust", "ordered_at": "when", "amount": "value"}
    report = load_file(db, "orders", path, mapping=mapping, date_format="%Y.%m.%d")
    assert report.loaded == 3
    assert any("order_id: none in the file" in n for n in report.notes)
    assert any("customers are derived" in n for n in report.notes)
    with Warehouse.open(db) as wh:
        ids = [r["order_id"] for r in wh.query("select order_id from raw.orders").to_pylist()]
    assert len(set(ids)) == 3 and all(i.startswith("G") for i in ids)
    # same rows twice in one file are two orders; reloading adds none
    assert load_file(db, "orders", path, mapping=mapping, date_format="%Y.%m.%d").loaded == 0


def test_parquet_and_replace(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"customer_id": ["a", "b"], "gender": ["f", "m"]}).to_parquet(path)
    db = tmp_path / "w.duckdb"
    assert load_file(db, "customers", path).loaded == 2
    assert load_file(db, "customers", path, replace=True).loaded == 2
    with Warehouse.open(db) as wh:
        assert wh.count("raw.customers") == 2


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        (
            "CustID,Date\nc1,2024-01-01\n",
            {"mapping": {"customer_id": "CustID", "ordered_at": "Date"}},
            r"needs column\(s\) amount",
        ),
        ("a,b\n1,2\n", {"mapping": {"customer_id": "nope"}}, r"no column 'nope'"),
        ("a,b\n1,2\n", {"mapping": {"colour": "a"}}, r"not in the orders contract"),
        ("customer_id,ordered_at,amount\n", {}, r"has no rows"),
    ],
)
def test_bad_files_give_clear_errors_and_write_nothing(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    db = tmp_path / "w.duckdb"
    with pytest.raises(InputError, match=message):
        load_file(db, "orders", path, **kwargs)
    with Warehouse.open(db) as wh:
        assert not wh.exists("raw.orders")


def test_unknown_table_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown table"):
        load_file(tmp_path / "w.duckdb", "invoices", tmp_path / "x.csv")
    with pytest.raises(InputError, match="file not found"):
        load_file(tmp_path / "w.duckdb", "orders", tmp_path / "x.csv")


def test_exports_shaped_like_real_ones(tmp_path):
    """A pizza shop: Latin-1 CSV, date and time in two columns, guest checkouts, lines with
    no quantity column."""
    from pyprofile.warehouse import Warehouse

    db = tmp_path / "shop.duckdb"
    orders = tmp_path / "orders.csv"
    orders.write_bytes(
        "Order;Client;Date;Time;Total\n".replace(";", ",").encode("latin-1")
        + "A1,Zoë,03/01/2024,18:05,21.50\n".encode("latin-1")
        + "A2,,03/01/2024,19:40,9.00\n".encode("latin-1")
        + "A3,Zoë,04/01/2024,12:00,15.25\n".encode("latin-1")
    )
    with pytest.raises(InputError, match="--encoding latin-1"):
        load_file(db, "orders", orders, mapping={"customer_id": "Client"})
    report = load_file(
        db,
        "orders",
        orders,
        mapping={
            "order_id": "Order",
            "customer_id": "Client",
            "ordered_at": "Date+Time",
            "amount": "Total",
        },
        encoding="latin-1",
        guests=True,
        date_format="%d/%m/%Y %H:%M",
    )
    assert (report.loaded, report.rejected) == (3, 0)
    lines = tmp_path / "lines.csv"
    lines.write_text("Order,Pizza,Price\nA1,margherita,9.50\nA1,diavola,12.00\nA2,margherita,9.0\n")
    report = load_file(
        db,
        "order_items",
        lines,
        mapping={"order_id": "Order", "product_id": "Pizza", "unit_price": "Price"},
        constants={"quantity": "1"},
    )
    assert report.loaded == 3
    with Warehouse.open(db) as wh:
        got = wh.query(
            "select order_id, customer_id, ordered_at, is_guest from raw.orders order by 1"
        ).to_pylist()
        quantities = wh.query("select distinct quantity from raw.order_items").to_pylist()
    assert got == [
        {
            "order_id": "A1",
            "customer_id": "Zoë",
            "ordered_at": datetime(2024, 1, 3, 18, 5),
            "is_guest": "false",
        },
        {
            "order_id": "A2",
            "customer_id": "guest-A2",
            "ordered_at": datetime(2024, 1, 3, 19, 40),
            "is_guest": "true",
        },
        {
            "order_id": "A3",
            "customer_id": "Zoë",
            "ordered_at": datetime(2024, 1, 4, 12, 0),
            "is_guest": "false",
        },
    ]
    assert quantities == [{"quantity": 1}]
    with pytest.raises(InputError, match="either with --map or --set"):
        load_file(
            db, "order_items", lines, mapping={"quantity": "Pizza"}, constants={"quantity": "1"}
        )
    with pytest.raises(InputError, match="--encoding 'ebcdic'"):
        load_file(db, "orders", orders, encoding="ebcdic")
