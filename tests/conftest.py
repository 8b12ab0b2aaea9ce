"""Shared fixtures: one small demo warehouse built with dbt once per test session."""

from __future__ import annotations

import os

import pytest

# Keep torch and BLAS to the CI machine's two cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """A 1,500-customer demo warehouse with staging and features built (dbt build, once)."""
    from pyprofile.dbt import run_dbt
    from pyprofile.demo import generate_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    generate_demo(path, customers=1500, seed=7)
    run_dbt("build", path, select=["staging", "features"])
    return path


@pytest.fixture(scope="session")
def demo_wh(demo_db):
    from pyprofile.warehouse import Warehouse

    wh = Warehouse.open(demo_db)
    yield wh
    wh.close()
