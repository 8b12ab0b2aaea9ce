"""Scoring functions in the warehouse: persisted SQL functions and session-only Python UDFs.

* **Persisted functions** (DuckDB macros) are stored in the warehouse file and callable from
  any DuckDB (>= 1.3) client without Python, e.g. ``select ml.segment_of(...) from ...``.
  :func:`segment_functions` and :func:`scoring_functions` build them from fitted models
  (:mod:`pyprofile.warehouse.scoring_sql`); :func:`static_functions` reads the ones kept as
  SQL under ``udfs/``. Flows persist them with their tables, in one transaction.
* **Python UDFs** (:func:`register`) are vectorised (Arrow) functions registered on one open
  connection. They exist **only in that session**: another client, or the same file reopened,
  does not see them. They are for scoring that SQL cannot express well (deep models) and as a
  Python reference for the SQL functions.
* The sequence model's next-products function is session-only too, and not registered here: a
  caller with a fitted :class:`~pyprofile.models.sequence.SequenceRecommender` creates it on
  its own connection (``model.next_items_udf(k)``, whose docstring shows the call). No SQL
  function computes it, so BI tools read the stored ``ml.recommendations`` instead.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError, WarehouseError
from pyprofile.models.clv import BGNBD, GammaGamma
from pyprofile.models.propensity import PropensityModel
from pyprofile.models.segment import Segmenter
from pyprofile.resources import udfs_dir
from pyprofile.warehouse import scoring_sql, tables
from pyprofile.warehouse.duckdb import DuckDBWarehouse
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.registry import load_model
from pyprofile.warehouse.sql import quote

_HEADER = re.compile(r"^--\s*macro:\s*([A-Za-z_][\w.]*)\s*\(([^)]*)\)\s*$", re.MULTILINE)
LIFETIMES_COLUMNS = ("frequency", "recency", "T", "monetary_value")


@dataclass(frozen=True)
class Function:
    """One scoring function to persist: ``name(params)`` defined by the SQL ``body``."""

    name: str
    params: list[str]
    body: str

    def call(self) -> str:
        """How to call it on columns named like its parameters, e.g. ``ml.f("a", "b")``."""
        return f"{self.name}({', '.join(quote(p) for p in self.params)})"


# --------------------------------------------------------------------------- from fitted models
def segment_functions(
    model: Segmenter, name: str = tables.SEGMENT_OF, table_name: str | None = tables.SEGMENT_TABLE
) -> list[Function]:
    """``name(<feature_names_in_>)`` (one row) and the table function ``table_name(tbl)``
    (every column of the named table plus ``segment_id`` and ``distance_to_centroid``)."""
    out = [Function(name, list(model.feature_names_in_), scoring_sql.segment_of_sql(model))]
    if table_name:
        out.append(Function(table_name, ["tbl"], scoring_sql.segment_table_sql(model)))
    return out


def propensity_functions(churn: PropensityModel) -> list[Function]:
    """``churn_score(<features>)``: the kept churn model (linear or trees, calibrated), and
    ``purchase_score(<features>)`` = 1 - churn_score: exactly the stored probabilities."""
    params, body = scoring_sql.propensity_sql(churn)
    churn_score = Function(tables.CHURN_SCORE, params, body)
    return [churn_score, Function(tables.PURCHASE_SCORE, params, f"(1.0e0 - {churn_score.call()})")]


def clv_functions(
    bgnbd: BGNBD, gamma_gamma: GammaGamma, *, discount_rate: float, months: int = 12
) -> list[Function]:
    """``p_alive``, ``expected_purchases``, ``expected_value`` and ``clv_12m``."""
    lifetimes = ["frequency", "recency", "T"]
    return [
        Function(tables.P_ALIVE, lifetimes, scoring_sql.p_alive_sql(bgnbd)),
        Function(
            tables.EXPECTED_PURCHASES,
            ["horizon", *lifetimes],
            scoring_sql.expected_purchases_sql(bgnbd),
        ),
        Function(
            tables.EXPECTED_VALUE,
            ["frequency", "monetary_value"],
            scoring_sql.expected_value_sql(gamma_gamma),
        ),
        Function(
            tables.CLV_12M,
            list(LIFETIMES_COLUMNS),
            scoring_sql.clv_sql(
                tables.EXPECTED_PURCHASES,
                tables.EXPECTED_VALUE,
                months=months,
                discount_rate=discount_rate,
            ),
        ),
    ]


# --------------------------------------------------------------------------- static SQL files
def read_sql_function(path: str | Path) -> Function:
    """A function kept as SQL: a ``-- macro: schema.name(a, b)`` line, then the body.

    Other lines starting with ``--`` are comments.
    """
    text = Path(path).read_text()
    header = _HEADER.search(text)
    if header is None:
        raise InputError(f"{path}: no '-- macro: schema.name(arg, ...)' header line")
    params = [p.strip() for p in header.group(2).split(",") if p.strip()]
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    if not body.strip():
        raise InputError(f"{path}: the macro body is empty")
    return Function(header.group(1), params, body.strip())


def static_functions() -> list[Function]:
    """Every function kept as SQL under ``udfs/`` (``*.sql``), e.g. ``ml.rfm_segment``."""
    return [read_sql_function(path) for path in sorted(udfs_dir().glob("*.sql"))]


# --------------------------------------------------------------------------- session-only UDFs
def _duck_type(kind: str, column_type: str | None):
    import duckdb.sqltypes as t

    if kind == "categorical":
        return t.VARCHAR
    if column_type and column_type.upper() == "BOOLEAN":
        return t.BOOLEAN
    return t.DOUBLE


def register(
    con: Any,
    segmenter: Segmenter | None = None,
    *,
    name: str = "py_segment_of",
    column_types: dict[str, str] | None = None,
) -> list[str]:
    """Register vectorised Python UDFs on ``con`` (a DuckDB connection); session-only.

    ``py_segment_of(<feature columns>)`` returns what :meth:`Segmenter.predict` returns. Without
    ``segmenter`` the latest ``segmenter`` model in the connection's ``ml.model_registry`` is
    used. ``column_types`` (column -> DuckDB type) declares BOOLEAN inputs; others are DOUBLE or
    VARCHAR. Returns the registered function names.
    """
    wh = Warehouse.open(con)
    if not isinstance(wh, DuckDBWarehouse):
        raise WarehouseError("Python UDFs are registered on DuckDB connections only")
    if segmenter is None:
        try:
            segmenter = Segmenter.from_artifact(load_model(wh, tables.SEGMENTER_MODEL).artifact)
        except WarehouseError as exc:
            raise WarehouseError(f"cannot register {name}: {exc}") from exc
    segmenter._check_fitted()
    columns = list(segmenter.feature_names_in_)
    kinds = {item["column"]: item["kind"] for item in segmenter.preprocessing_}
    types = column_types or {}
    arg_types = [_duck_type(kinds[c], types.get(c)) for c in columns]

    def segment_of(*arrays: Any) -> Any:
        import pyarrow as pa

        frame = pd.DataFrame({c: a.to_pandas() for c, a in zip(columns, arrays, strict=True)})
        return pa.array(segmenter.predict(frame).astype(np.int64))

    # DuckDB counts the Python function's parameters: give the varargs function one per column.
    segment_of.__signature__ = inspect.Signature(
        [inspect.Parameter(f"x{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(columns))]
    )
    _create(wh.con, name, segment_of, arg_types, "BIGINT")
    return [name]


def _create(con: Any, name: str, fn: Callable, arg_types: list, return_type: str) -> None:
    import duckdb

    with contextlib.suppress(duckdb.InvalidInputException):
        con.remove_function(name)
    con.create_function(
        name, fn, arg_types, return_type, type="arrow", null_handling="special", side_effects=False
    )


def publish_functions(wh: Warehouse, functions: list[Function]) -> list[str]:
    """Persist ``functions`` (in one transaction); returns how to call each."""
    with wh.transaction():
        for function in functions:
            wh.publish_macro(function.name, function.params, function.body)
    return [function.call() for function in functions]
