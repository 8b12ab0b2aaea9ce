"""Published snapshots: readers open a consistent copy of the warehouse (DuckDB 1.x included)
and never block a run; a publish killed at any point leaves the previous snapshot whole."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pyprofile.dbt import run_dbt
from pyprofile.demo import generate_demo
from pyprofile.errors import InputError, WarehouseError
from pyprofile.flows.segmentation import run_segmentation
from pyprofile.warehouse import Warehouse, quote
from pyprofile.warehouse.snapshot import publish_snapshot, reader_path, snapshot_path

FAST = {"synth_epochs": 2, "segment_epochs": 3}
DUCKDB1 = os.environ.get("PYPROFILE_DUCKDB1_PYTHON")
LOG = "ml.publish_snapshot"  # the dbt model's run log, left out of the snapshot


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 400-customer demo warehouse after a whole `dbt build`, which ends by publishing."""
    path = tmp_path_factory.mktemp("snapshot") / "shop.duckdb"
    generate_demo(path, customers=400, seed=11)
    run_dbt("build", path, vars=FAST)
    return path


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


@contextmanager
def _working(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The working file, read-only (or through dbt's connection, still open in this process)."""
    with Warehouse.open(path, read_only=True) as wh:
        yield wh.con


def _contents(con: duckdb.DuckDBPyConnection) -> dict:
    """Every table's and view's row count and content hash, every macro's signature."""
    catalog = con.execute("select current_database()").fetchone()[0]
    tables = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where database_name = ? order by 1",
        [catalog],
    ).fetchall()
    views = con.execute(
        "select schema_name || '.' || view_name from duckdb_views() "
        "where database_name = ? and not internal order by 1",
        [catalog],
    ).fetchall()
    out = {
        "macros": con.execute(
            # definitions are re-rendered by the copy (numbers in their shortest form): their
            # results are compared instead, below
            "select schema_name, function_name, function_type, parameters "
            "from duckdb_functions() where database_name = ? order by all",
            [catalog],
        ).fetchall()
    }
    for (name,) in tables + views:
        out[name] = con.execute(
            f"select count(*), sum(hash(t)::hugeint) from {name} as t"
        ).fetchone()
    return out


def _scored(con: duckdb.DuckDBPyConnection) -> list:
    """Every persisted scalar macro whose inputs are feature columns, applied to every customer."""
    columns = {
        d[0] for d in con.execute("select * from features.customer_features limit 0").description
    }
    calls = [
        f"ml.{name}({', '.join(quote(p) for p in params)})"
        for name, params in con.execute(
            "select function_name, parameters from duckdb_functions() "
            "where schema_name = 'ml' and function_type = 'macro' order by all"
        ).fetchall()
        if set(params) <= columns
    ]
    assert len(calls) >= 6  # rfm_segment, segment_of, churn_score, p_alive, clv_12m, ...
    return con.execute(
        f"select customer_id, {', '.join(calls)} from features.customer_features order by 1"
    ).fetchall()


def test_dbt_build_publishes_a_snapshot_with_the_same_content(built):
    snap = snapshot_path(built)
    assert snap == built.parent / "shop.published" / "shop.duckdb"
    assert reader_path(built) == snap
    assert stat.S_IMODE(snap.stat().st_mode) == 0o444  # a read-write open fails at once
    assert sorted(p.name for p in snap.parent.iterdir()) == [".shop.duckdb.lock", "shop.duckdb"]
    with _working(built) as work, _connect(snap) as read:
        log = work.execute(f"select snapshot_path, snapshot_bytes from {LOG}").fetchall()
        assert log == [(str(snap), snap.stat().st_size)]
        # the same catalog name as the working file, in storage v1.0 (DuckDB 1.x opens it)
        assert read.execute(
            "select database_name, tags['storage_version'] from duckdb_databases() "
            "where database_name = current_database()"
        ).fetchone() == ("shop", "v1.0.0+")
        expected, got = _contents(work), _contents(read)
        del expected[LOG]
        assert got == expected
        assert {"marts.customer_profiles", "marts.segment_summary"}.issubset(got)
        assert len(got["macros"]) >= 9  # rfm_segment, segment_of, segment_table, churn_score...
        profiles = "select count(*), sum(clv_12m), count(segment_name) from marts.customer_profiles"
        assert read.execute(profiles).fetchall() == work.execute(profiles).fetchall()
        scored = _scored(read)
        assert scored == _scored(work) and len(scored) == 400
        named = read.execute("select count(segment_name) from marts.customer_profiles").fetchone()
    if not DUCKDB1:
        pytest.skip("set PYPROFILE_DUCKDB1_PYTHON to a python with duckdb 1.x (scripts/test.sh)")
    code = textwrap.dedent(
        """
        import duckdb, json, sys
        assert duckdb.__version__.startswith("1."), duckdb.__version__
        con = duckdb.connect(sys.argv[1], read_only=True)
        print(json.dumps([
            con.execute("select count(segment_name) from marts.customer_profiles").fetchone()[0],
            con.execute("select count(*) from marts.segment_summary").fetchone()[0],
            con.execute("select count(*) from features.customer_features "
                        "where ml.rfm_segment(r_score, f_score, m_score) = rfm_segment")
            .fetchone()[0],
        ]))
        """
    )
    out = subprocess.run([DUCKDB1, "-c", code, str(snap)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [named[0], got["marts.segment_summary"][0], 400]


def test_a_snapshot_of_some_schemas_drops_the_views_that_read_the_rest(built, tmp_path):
    only = publish_snapshot(built, schemas=["features", "ml", "marts"], path=tmp_path / "a.duckdb")
    assert only.skipped_views == ()
    with _connect(only.path) as con:
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_tables()").fetchall()}
        assert schemas == {"features", "ml"}
        assert con.execute("select count(*) from marts.customer_profiles").fetchone()[0] == 400
    staged = publish_snapshot(
        built, schemas=["staging", "features", "ml", "marts"], path=tmp_path / "b.duckdb"
    )
    # the staging views over raw.* cannot work without it; those over staging tables do
    assert "staging.stg_shop__events" in staged.skipped_views
    assert "staging.stg_shop__orders" not in staged.skipped_views
    with _connect(staged.path) as con, _working(built) as work:
        sql = "select count(*) from staging.stg_shop__orders"
        assert con.execute(sql).fetchone() == work.execute(sql).fetchone()
    assert only.bytes < snapshot_path(built).stat().st_size
    with pytest.raises(WarehouseError, match="cannot replace the working file"):
        publish_snapshot(built, path=built)
    with pytest.raises(InputError, match="no schema feature in the warehouse"):
        publish_snapshot(built, schemas=["feature", "ml"], path=tmp_path / "c.duckdb")
    assert sorted(p.name for p in tmp_path.iterdir() if "c.duckdb" in p.name) == [".c.duckdb.lock"]


READER = textwrap.dedent(
    """
    import duckdb, json, os, sys, time
    snapshot, ready, stop, out = sys.argv[1:5]
    stats = {"reads": 0, "errors": [], "versions": {}, "torn": []}
    sql = '''select (select min(model_version) from ml.customer_segments),
                    (select max(model_version) from ml.customer_segments),
                    (select min(model_version) from ml.segment_profiles),
                    (select max(model_version) from ml.segment_profiles),
                    (select count(*) from ml.segment_profiles),
                    (select count(distinct segment_id) from ml.customer_segments)'''
    while not os.path.exists(stop):
        stats["reads"] += 1
        try:
            con = duckdb.connect(snapshot, read_only=True)
            try:
                seg_lo, seg_hi, prof_lo, prof_hi, profiles, segments = con.execute(sql).fetchone()
            finally:
                con.close()
        except Exception as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}")
        else:
            if len({seg_lo, seg_hi, prof_lo, prof_hi}) != 1 or profiles != segments:
                stats["torn"].append([seg_lo, seg_hi, prof_lo, prof_hi, profiles, segments])
            seen = stats["versions"].setdefault(seg_lo, [0, profiles])
            seen[0] += 1
            if not os.path.exists(ready):
                open(ready, "w").close()
        time.sleep(0.05)
    with open(out, "w") as f:
        json.dump(stats, f)
    """
)


def _start_readers(snapshot: Path, folder: Path) -> list[tuple[str, subprocess.Popen, Path]]:
    readers = []
    pythons = [(f"duckdb {duckdb.__version__}", sys.executable), ("duckdb 1.x", DUCKDB1)]
    for label, python in pythons:
        if not python:
            continue
        out, ready = folder / f"{len(readers)}.json", folder / f"{len(readers)}.ready"
        args = [python, "-c", READER, str(snapshot), str(ready), str(folder / "stop"), str(out)]
        readers.append((label, subprocess.Popen(args), out))
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline, f"reader {label} never read the snapshot"
            time.sleep(0.05)
    return readers


def test_readers_polling_the_snapshot_never_fail_nor_block_a_run(built, tmp_path):
    """Readers connect, read two tables and close every 50 ms while the working file is
    rebuilt and re-published: no reader error, no torn read, no writer lock error."""
    snap = snapshot_path(built)
    readers = _start_readers(snap, tmp_path)
    published = {}
    try:
        for k in (3, 4, 5):
            summary = run_segmentation(built, k=k, epochs=2, random_state=k)
            publish_snapshot(built)
            published[summary["model_version"]] = k
            time.sleep(1.0)  # let the readers see this version
    finally:
        (tmp_path / "stop").touch()
        for _, process, _ in readers:
            process.wait(timeout=60)
    for label, process, out in readers:
        stats = json.loads(out.read_text())
        print(
            f"\nreader ({label}): {stats['reads']} reads, {len(stats['errors'])} errors, "
            f"{len(stats['torn'])} torn, versions seen {stats['versions']}"
        )
        assert process.returncode == 0
        assert stats["errors"] == [] and stats["torn"] == []
        assert stats["reads"] > 20
        # every version re-published was read whole, with its own number of segments
        for version, k in published.items():
            assert stats["versions"].get(version, [0, k])[1] == k
        assert len(set(stats["versions"]) & set(published)) >= 2


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _marker(path: Path) -> tuple:
    with _connect(path) as con:
        return con.execute(
            "select (select model_version from ml.marker), count(*), sum(hash(x)::hugeint), "
            "min(x) >= 1 from ml.big"
        ).fetchone()


PUBLISH = "import sys; from pyprofile.warehouse.snapshot import publish_snapshot; publish_snapshot(sys.argv[1])"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _publish_and_kill(db: Path, *, at_bytes: int) -> subprocess.Popen:
    """Publish ``db`` in a subprocess; SIGKILL it once its temporary file holds ``at_bytes``."""
    folder = snapshot_path(db).parent
    process = subprocess.Popen([sys.executable, "-c", PUBLISH, str(db)])
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if any(_size(t) >= at_bytes for t in folder.glob(f".{db.name}.*.tmp")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    return process


def test_a_publish_killed_mid_copy_leaves_the_previous_snapshot(tmp_path):
    db = tmp_path / "big.duckdb"
    with Warehouse.open(db) as wh:
        wh.execute("create schema ml")
        wh.execute("create table ml.marker as select 'v1' as model_version")
        wh.execute(
            "create table ml.big as select range as id, random() as x, random() as y "
            "from range(3000000)"
        )
    first = publish_snapshot(db)
    before, digest = _marker(first.path), _digest(first.path)
    assert before[0] == "v1"
    with Warehouse.open(db) as wh:
        wh.execute("update ml.marker set model_version = 'v2'")
        wh.execute("update ml.big set x = x + 1")
    # killed while rows are being written to the new file
    killed = _publish_and_kill(db, at_bytes=4 << 20)
    assert killed.returncode == -signal.SIGKILL, "the publish finished before it was killed"
    leftovers = list(first.path.parent.glob(".big.duckdb.*.tmp*"))
    assert leftovers, "the killed publish left no temporary file behind"
    assert _digest(first.path) == digest and _marker(first.path) == before
    if DUCKDB1:
        code = "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); " + (
            "print(con.execute('select model_version from ml.marker').fetchone()[0])"
        )
        out = subprocess.run([DUCKDB1, "-c", code, str(first.path)], capture_output=True, text=True)
        assert out.stdout.strip() == "v1", out.stderr
    # the next publish cleans up and swaps in the new version
    second = publish_snapshot(db)
    assert not list(first.path.parent.glob(".big.duckdb.*.tmp*"))
    after = _marker(second.path)
    assert after[:2] == ("v2", before[1]) and after[2] != before[2] and after[3]
