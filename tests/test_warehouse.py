from __future__ import annotations

import os
import subprocess
import threading

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pyprofile.errors import InputError, WarehouseError
from pyprofile.models.artifact import pack, unpack
from pyprofile.warehouse import Warehouse, qualified, quote
from pyprofile.warehouse.registry import load_model, save_model


def test_identifiers_are_validated_and_quoted():
    assert quote('we"ird') == '"we""ird"'
    assert qualified("ml.scores") == '"ml"."scores"'
    for bad in ["ml.scores; drop table x", "a.b.c", "", "ml.", "1abc.x", 'ml."x"']:
        with pytest.raises(InputError):
            qualified(bad)


def test_write_is_atomic_and_idempotent(tmp_path):
    wh = Warehouse.open(tmp_path / "w.duckdb")
    wh.write("ml.t", pa.table({"id": [1, 2], "v": [0.5, 0.7]}), primary_key=["id"])
    wh.write("ml.t", pa.table({"id": [1, 2], "v": [0.5, 0.7]}), primary_key=["id"])
    assert wh.count("ml.t") == 2
    # a bad key leaves the old version in place
    with pytest.raises(InputError, match=r"1 duplicated value"):
        wh.write("ml.t", pa.table({"id": [3, 3], "v": [1.0, 2.0]}), primary_key=["id"])
    with pytest.raises(InputError, match=r"1 null row"):
        wh.write("ml.t", pa.table({"id": [None, 4], "v": [1.0, 2.0]}), primary_key=["id"])
    # a failure inside a multi-table write rolls every table back
    with pytest.raises(duckdb.CatalogException), wh.transaction() as con:
        con.execute("create or replace table ml.t as select 99 as id")
        con.execute("select * from no_such_table")
    assert wh.query("select id from ml.t order by id").column("id").to_pylist() == [1, 2]


def test_readers_never_see_half_a_write(tmp_path):
    """A second connection polls while a large table is replaced: it sees old or new, whole."""
    path = tmp_path / "w.duckdb"
    wh = Warehouse.open(path)
    n = 200_000
    wh.write("ml.big", pa.table({"k": np.arange(n), "version": np.zeros(n, dtype=int)}))
    reader = wh.con.cursor()
    seen, stop = set(), threading.Event()

    def poll():
        while not stop.is_set():
            seen.add(
                reader.execute(
                    "select count(*), min(version), max(version) from ml.big"
                ).fetchall()[0]
            )

    t = threading.Thread(target=poll)
    t.start()
    for v in range(1, 4):
        wh.write("ml.big", pa.table({"k": np.arange(n), "version": np.full(n, v)}))
    stop.set()
    t.join()
    assert all(count == n and lo == hi for count, lo, hi in seen)


def test_registry_round_trip_and_checksum(tmp_path):
    wh = Warehouse.open(tmp_path / "w.duckdb")
    blob = pack({"w": np.arange(6.0).reshape(2, 3)}, {"k": 3})
    v1 = save_model(wh, "seg", blob, params={"k": 3}, metrics={"silhouette": 0.41})
    assert save_model(wh, "seg", blob, params={"k": 3}) == v1  # same content, same version
    assert wh.count("ml.model_registry") == 1
    rec = load_model(wh, "seg")
    arrays, meta = unpack(rec.artifact)
    np.testing.assert_array_equal(arrays["w"], np.arange(6.0).reshape(2, 3))
    assert meta == {"k": 3} and rec.params == {"k": 3} and rec.version == v1
    wh.execute("update ml.model_registry set artifact = artifact || '\\x00'::blob")
    with pytest.raises(WarehouseError, match="checksum mismatch"):
        load_model(wh, "seg")
    with pytest.raises(WarehouseError, match="no model named"):
        load_model(wh, "nope")


def test_pack_refuses_objects():
    with pytest.raises(TypeError):
        pack({"x": np.array([{"a": 1}], dtype=object)})


def test_missing_table_and_column_messages(tmp_path):
    wh = Warehouse.open(tmp_path / "w.duckdb")
    with pytest.raises(WarehouseError, match="features.customer_features does not exist"):
        wh.read("features.customer_features")
    wh.write("ml.t", pa.table({"a": [1]}))
    with pytest.raises(InputError, match="lacks required column"):
        wh.read("ml.t", columns=["a", "b"])


def test_file_is_readable_by_duckdb_1x(tmp_path):
    """BI tools embed DuckDB 1.x: the file must use a storage version it can read."""
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.write("ml.t", pa.table({"a": [1, 2]}))
        wh.publish_macro("ml.plus_one", ["x"], "x + 1")
        version = wh.scalar(
            "select tags['storage_version'] from duckdb_databases() where database_name = 'w'"
        )
        assert str(version).startswith("v1.0")
    old_python = os.environ.get("PYPROFILE_DUCKDB1_PYTHON")
    if not old_python:
        pytest.skip(
            "set PYPROFILE_DUCKDB1_PYTHON to a python with duckdb 1.x (scripts/test.sh does)"
        )
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "assert duckdb.__version__.startswith('1.');"
        "print(c.execute('select sum(ml.plus_one(a)) from ml.t').fetchall()[0][0])"
    )
    out = subprocess.run([old_python, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"


def test_a_failed_commit_is_reported_not_masked_by_the_rollback():
    """A full disk fails the commit and ends the transaction: the user must see the disk error,
    not DuckDB's "cannot rollback - no transaction is active"."""
    import duckdb

    from pyprofile.warehouse import DuckDBWarehouse

    class FullDisk:
        def __init__(self):
            self.con = duckdb.connect()

        def execute(self, sql, params=None):
            if sql == "commit":
                self.con.execute("rollback")
                raise duckdb.IOException("could not write file: No space left on device")
            if sql == "rollback":
                raise duckdb.TransactionException("cannot rollback - no transaction is active")
            return self.con.execute(sql, params or [])

    wh = DuckDBWarehouse(FullDisk())
    with pytest.raises(WarehouseError, match="No space left on device"):
        wh.publish_macro("main.f", ["x"], "x + 1")


STREAM_PROBE = """
import resource, sys
from pyprofile.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1], read_only=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = sum(b.num_rows for b in wh.batches("main.big", batch_size=50_000))
extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(rows, extra * 1024)
"""


def test_batches_stream_without_holding_the_table(tmp_path):
    """Reading 8M rows (192 MB of Arrow) in batches adds far less than the table to the
    process's peak memory (DuckDB's DB-API reader copied all of it first: +760 MB for 720)."""
    path = tmp_path / "big.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "create table main.big as select range as a, range * 2 as b, range * 3 as c "
        "from range(8000000)"
    )
    con.close()
    out = subprocess.run(
        [os.sys.executable, "-c", STREAM_PROBE, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows, extra = map(int, out.stdout.split())
    assert rows == 8_000_000
    assert extra < 0.4 * 8_000_000 * 3 * 8, extra
