"""kill -9 during a flow: the warehouse holds the previous run or the new one, never a mix.

Each flow runs in a subprocess that kills itself (SIGKILL) at an injected point: inside its
publishing transaction (after the first registry row is written, before the commit) or right
after the commit. Afterwards every output table names the registry's latest version, the scoring
functions compute the stored scores, no scratch table is left, and a DuckDB 1.x client (what
BI tools embed) opens the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pyprofile.warehouse import Warehouse

# flow module, call, the registry model it publishes, its output tables
FLOWS = {
    "segmentation": (
        "run_segmentation(db, k=4, epochs=3, cluster_epochs=1, n_init=1, random_state=SEED)",
        "segmenter",
        ["ml.customer_segments", "ml.segment_profiles"],
    ),
    "scoring": (
        "run_scoring(db, propensity_model='linear', random_state=SEED)",
        "customer_scores",
        ["ml.customer_scores"],
    ),
    "synthesizer": (
        "run_synthesizer(db, rows=200, epochs=2, batch_size=100, random_state=SEED)",
        "synthesizer",
        ["ml.synthetic_customers", "ml.synthetic_quality"],
    ),
    "recommendations": (
        "run_recommendations(db, method='popularity', random_state=SEED, **pipeline_inputs(db))",
        "recommender",
        ["ml.recommendations", "ml.product_similarities"],
    ),
}

SCRIPT = """
import os, signal, sys
import pyprofile.flows.{flow} as module
from pyprofile.flows import publish as publishing
from pyprofile.flows.{flow} import *

db, point, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "inside":  # the first registry row is written, the transaction is still open
    save = publishing.save_model
    def save_and_die(*args, **kwargs):
        save(*args, **kwargs)
        die()
    publishing.save_model = save_and_die
elif point == "after":  # everything is committed
    publish = module.publish
    def publish_and_die(*args, **kwargs):
        publish(*args, **kwargs)
        die()
    module.publish = publish_and_die
{call}
"""


def _copy(src, dst) -> None:
    """A warehouse file with its write-ahead log, if any (dbt leaves one)."""
    shutil.copy(src, dst)
    wal = f"{src}.wal"
    if os.path.exists(wal):
        shutil.copy(wal, f"{dst}.wal")


def _run(db, flow: str, point: str, seed: int) -> subprocess.CompletedProcess:
    call, _, _ = FLOWS[flow]
    code = textwrap.dedent(SCRIPT).format(flow=flow, call=call)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", code, str(db), point, str(seed)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def _state(db, model: str, outputs: list[str]) -> str:
    """The one version every output and the registry agree on (asserts they agree)."""
    with Warehouse.open(db) as wh:
        latest = wh.scalar(
            "select version from ml.model_registry where name = ? order by trained_at desc limit 1",
            [model],
        )
        for table in outputs:
            versions = wh.query(f"select distinct model_version from {table}").column(0)
            assert versions.to_pylist() == [latest], (table, versions, latest)
        _functions_match_tables(wh, model)
        leftovers = wh.scalar(
            "select count(*) from information_schema.tables where table_catalog = "
            "current_database() and table_name like '%scratch%'"
        )
        assert leftovers == 0
    return latest


def _functions_match_tables(wh: Warehouse, model: str) -> None:
    if model == "segmenter":
        differ = wh.scalar(
            "select count(*) from ml.segment_table('features.customer_features') t "
            "join ml.customer_segments s using (customer_id) where t.segment_id <> s.segment_id"
        )
        assert differ == 0
    if model == "customer_scores":
        got = wh.query(
            'select ml.p_alive(f.frequency, f.recency, f."T") as sql_value, s.p_alive '
            "from ml.customer_scores s join features.customer_features f using (customer_id)"
        ).to_pandas()
        np.testing.assert_allclose(got["sql_value"], got["p_alive"], atol=1e-9)


def _opens_with_duckdb_1x(db) -> None:
    old_python = os.environ.get("PYPROFILE_DUCKDB1_PYTHON")
    if not old_python:
        return
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "print(c.execute('select count(*) from ml.model_registry').fetchall()[0][0])"
    )
    out = subprocess.run([old_python, "-c", code, str(db)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def baseline(demo_db, tmp_path_factory):
    """The demo warehouse with every flow run once (seed 0): the 'previous run'."""
    db = tmp_path_factory.mktemp("crash") / "base.duckdb"
    _copy(demo_db, db)
    for flow in FLOWS:
        out = _run(db, flow, "none", 0)
        assert out.returncode == 0, out.stderr[-2000:]
    return db


@pytest.mark.parametrize("flow", list(FLOWS))
def test_kill_inside_or_after_publishing_leaves_one_consistent_version(baseline, tmp_path, flow):
    _, model, outputs = FLOWS[flow]
    before = _state(baseline, model, outputs)
    for point, expect_new in (("inside", False), ("after", True)):
        db = tmp_path / f"{point}.duckdb"
        _copy(baseline, db)
        out = _run(db, flow, point, 1)
        assert out.returncode == -9, out.stderr[-2000:]  # it really was killed
        after = _state(db, model, outputs)
        assert (after != before) == expect_new, (point, before, after)
        _opens_with_duckdb_1x(db)
