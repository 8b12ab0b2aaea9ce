"""publish: registry rows, tables and scoring functions appear together or not at all."""

from __future__ import annotations

import pandas as pd
import pytest

from pyprofile.errors import InputError, WarehouseError
from pyprofile.flows.publish import ModelEntry, check_unique, publish, read_frame
from pyprofile.models.artifact import pack
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.functions import Function
from pyprofile.warehouse.registry import load_model


def _entry(value: int) -> ModelEntry:
    return ModelEntry("toy", pack({}, {"value": value}), {"value": value}, {"score": value})


def test_everything_lands_together():
    wh = Warehouse.open(":memory:")
    entry = _entry(1)
    counts = publish(
        wh,
        models=[entry],
        tables={"ml.toy": pd.DataFrame({"x": [1, 2], "model_version": entry.version})},
        functions=[Function("ml.toy_double", ["x"], "2 * x")],
    )
    assert counts == {"ml.toy": 2}
    assert load_model(wh, "toy").version == entry.version
    assert wh.scalar("select ml.toy_double(21)") == 42
    assert wh.scalar("select distinct model_version from ml.toy") == entry.version


def test_a_failure_anywhere_leaves_the_previous_run_untouched():
    wh = Warehouse.open(":memory:")
    first = _entry(1)
    publish(
        wh,
        models=[first],
        tables={"ml.toy": pd.DataFrame({"x": [1], "model_version": first.version})},
        functions=[Function("ml.toy_double", ["x"], "2 * x")],
    )
    second = _entry(2)
    with pytest.raises(Exception, match="syntax|Parser"):
        publish(
            wh,
            models=[second],
            tables={"ml.toy": pd.DataFrame({"x": [5, 6, 7], "model_version": second.version})},
            functions=[
                Function("ml.toy_double", ["x"], "3 * x"),
                Function("ml.broken", ["x"], "x +* ) nonsense"),
            ],
        )
    assert load_model(wh, "toy").version == first.version  # the registry did not move
    with pytest.raises(WarehouseError):
        load_model(wh, "toy", second.version)
    assert wh.count("ml.toy") == 1  # nor did the table
    assert wh.scalar("select ml.toy_double(21)") == 42  # nor the function


def test_read_frame_and_check_unique_name_the_table():
    wh = Warehouse.open(":memory:")
    wh.write("features.empty", pd.DataFrame({"customer_id": pd.Series([], dtype="int64")}))
    with pytest.raises(InputError, match="features.empty is empty"):
        read_frame(wh, "features.empty")
    with pytest.raises(WarehouseError, match="features.nope does not exist"):
        read_frame(wh, "features.nope")
    frame = pd.DataFrame({"customer_id": [1, 1, None]})
    with pytest.raises(InputError, match=r"ml.out \(3 rows\).*1 null and 1 duplicated"):
        check_unique(frame, ["customer_id"], "ml.out")
