"""Scoring functions in the warehouse: persisted SQL macros and session-only Python UDFs.

* **Persisted macros** (``publish_*``) are stored in the warehouse file and callable from any
  DuckDB (>= 1.3) client without Python, e.g. ``select ml.segment_of(...) from ...``. They are
  generated from templates under ``udfs/`` filled with a fitted model's parameters.
* **Python UDFs** (:func:`register`) are vectorised (Arrow) functions registered on one open
  connection. They exist **only in that session**: another client, or the same file reopened,
  does not see them. They are for scoring that SQL cannot express well (deep models) and as a
  Python reference for the macros.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError, WarehouseError
from pyprofile.segment import Segmenter, render_template
from pyprofile.warehouse import Warehouse

SEGMENT_MODEL = "segmenter"
SEGMENT_MACRO = "ml.segment_of"
SEGMENT_TABLE_MACRO = "ml.segment_table"
_HEADER = re.compile(r"^--\s*macro:\s*([A-Za-z_][\w.]*)\s*\(([^)]*)\)\s*$", re.MULTILINE)


# --------------------------------------------------------------------------- persisted macros
def publish_segment_macro(
    wh: Any,
    segmenter: Segmenter,
    name: str = SEGMENT_MACRO,
    *,
    table_name: str | None = SEGMENT_TABLE_MACRO,
) -> str:
    """Persist ``name(<segmenter.feature_names_in_>)``: the segmenter's full scoring chain.

    Also persists the table macro ``table_name(tbl)`` for bulk scoring (every column of the
    named table plus ``segment_id`` and ``distance_to_centroid``), unless it is None.
    Returns the SQL call with the arguments in order, e.g. ``ml.segment_of("recency_days", ...)``.
    """
    from pyprofile.warehouse import quote

    wh = Warehouse.open(wh)
    wh.publish_macro(name, segmenter.macro_params, segmenter.to_sql())
    if table_name:
        wh.publish_macro(table_name, ["tbl"], segmenter.to_table_sql())
    return f"{name}({', '.join(quote(c) for c in segmenter.macro_params)})"


def publish_template(
    wh: Any, name: str, params: Sequence[str], template: str, **values: str
) -> None:
    """Fill ``udfs/<template>`` (``string.Template``) and persist it as macro ``name(params)``."""
    Warehouse.open(wh).publish_macro(name, list(params), render_template(template, **values))


def publish_sql_file(wh: Any, path: str | Path) -> str:
    """Persist a static macro kept as SQL: a ``-- macro: schema.name(a, b)`` line, then the body.

    Other lines starting with ``--`` are comments. Returns the macro name.
    """
    text = Path(path).read_text()
    header = _HEADER.search(text)
    if header is None:
        raise InputError(f"{path}: no '-- macro: schema.name(arg, ...)' header line")
    params = [p.strip() for p in header.group(2).split(",") if p.strip()]
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    if not body.strip():
        raise InputError(f"{path}: the macro body is empty")
    Warehouse.open(wh).publish_macro(header.group(1), params, body.strip())
    return header.group(1)


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
    from pyprofile.registry import load_model

    wh = Warehouse.open(con)
    if segmenter is None:
        try:
            segmenter = Segmenter.from_artifact(load_model(wh, SEGMENT_MODEL).artifact)
        except WarehouseError as exc:
            raise WarehouseError(f"cannot register {name}: {exc}") from exc
    segmenter._check_fitted()
    columns = segmenter.macro_params
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
