"""pyprofile.dbt: the run log of an ml step, and what a skipped step leaves behind."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pyprofile.dbt import run_step
from pyprofile.errors import InputError
from pyprofile.warehouse import Warehouse


def _fail():
    raise InputError("table features.customer_product_interactions has no interactions (0 rows)")


def test_run_log_is_typed_and_names_the_outcome():
    log = run_step("recommender", "ml.recommendations", lambda: {"rows": 3, "model_version": "v1"})
    assert log.schema.field("rows_written").type == pa.int64()
    assert log.to_pylist()[0]["status"] == "ok"
    skipped = run_step("recommender", "ml.recommendations", _fail)
    assert skipped.schema == log.schema  # no NULL-typed column when everything is null
    row = skipped.to_pylist()[0]
    assert row["status"] == "skipped" and "0 rows" in row["message"]


def test_a_skipped_step_clears_its_stale_outputs():
    wh = Warehouse.open(":memory:")
    old = pd.DataFrame({"customer_id": [1], "rank": [1], "model_version": ["v0"]})
    wh.write_many({"ml.recommendations": old, "ml.product_similarities": old, "ml.keep": old})
    wh.publish_macro("ml.segment_of", ["x"], "x + 1")
    run_step("recommender", "ml.recommendations", _fail, session=wh.con)
    assert not wh.exists("ml.recommendations") and not wh.exists("ml.product_similarities")
    assert wh.exists("ml.keep")  # what another step wrote stays
    assert wh.scalar("select ml.segment_of(1)") == 2
    wh.write("ml.customer_segments", old)
    wh.publish_macro("ml.segment_table", ["tbl"], "table select * from query_table(tbl)")
    run_step("segmenter", "ml.customer_segments", _fail, session=wh.con)
    functions = wh.query(
        "select function_name from duckdb_functions() where schema_name = 'ml'"
    ).column(0)
    assert functions.to_pylist() == [] and not wh.exists("ml.customer_segments")
