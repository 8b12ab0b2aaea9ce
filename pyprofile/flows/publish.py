"""What every flow shares: read its input, and publish its results in one transaction.

Each flow has the same shape: read inputs -> fit -> :func:`publish` (registry rows, output
tables and scoring functions, all in ONE transaction, so a reader sees the previous run or
this one, never a mix) -> return a summary dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa

from pyprofile.errors import InputError
from pyprofile.models.data import as_arrow
from pyprofile.models.sequence_data import ITEM, TIME, TYPE, USER, read_tokens
from pyprofile.warehouse.contracts import conform
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.functions import Function
from pyprofile.warehouse.registry import save_model, version_of
from pyprofile.warehouse.sql import qualified, quote


@dataclass
class ModelEntry:
    """One model to register: its name, artifact bytes, params and metrics."""

    name: str
    artifact: bytes
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The registry version the artifact will get (derived from its content)."""
        return version_of(self.artifact)


def publish(
    wh: Warehouse,
    *,
    models: Sequence[ModelEntry] = (),
    tables: dict[str, Any] | None = None,
    functions: Sequence[Function] = (),
    drop: Sequence[str] = (),
    drop_tables: Sequence[str] = (),
) -> dict[str, int]:
    """Register ``models``, replace ``tables`` (cast to their contracts' BI-safe types),
    persist ``functions`` and drop the functions named in ``drop`` and the tables named in
    ``drop_tables`` that exist (stale outputs of a part that was skipped), in one transaction.

    Returns the rows written per table.
    """
    typed = {
        name: conform(name, data if isinstance(data, pa.RecordBatchReader) else as_arrow(data))
        for name, data in (tables or {}).items()
    }
    with wh.transaction():
        if drop:
            wh.drop(functions=drop)
        if drop_tables:
            wh.drop(list(drop_tables))
        for model in models:
            save_model(wh, model.name, model.artifact, params=model.params, metrics=model.metrics)
        counts = wh.write_many(typed) if typed else {}
        for function in functions:
            wh.publish_macro(function.name, function.params, function.body)
    return counts


def read_frame(wh: Warehouse, name: str, required: Sequence[str] = ()) -> pd.DataFrame:
    """A whole input table as pandas; a missing table, column or an empty table is an
    :class:`~pyprofile.errors.InputError`-style message naming it."""
    wh.require(name, required)
    frame = wh.read(name).to_pandas()
    if frame.empty:
        raise InputError(f"table {name} is empty (0 rows)")
    return frame


def read_events(wh: Warehouse, table: str) -> pd.DataFrame:
    """The events of ``table`` (customer_id, product_id, event_at as the timestamp, event_type
    when present), validated as token sequences; a missing column or no events is an error."""
    columns = wh.require(table, [USER, ITEM, "event_at"])
    cols = [USER, ITEM, "event_at"] + ([TYPE] if TYPE in columns else [])
    events = wh.read(table, cols).to_pandas().rename(columns={"event_at": TIME})
    if events.empty:
        raise InputError(f"table {table} has no events (0 rows)")
    return read_tokens(events, f"table {table}")


def observation_date(wh: Warehouse, table: str, column: str = "as_of_date") -> date | None:
    """The observation date (``as_of``) a feature table was built for: the latest value of its
    ``as_of_date`` column, or None when it has none. Every ml output carries it."""
    if not wh.exists(table) or column not in wh.columns(table):
        return None
    value = wh.scalar(f"select max({quote(column)}) from {qualified(table)}")
    return None if value is None else pd.Timestamp(value).date()


def stamp(frame: pd.DataFrame, as_of, version: str) -> pd.DataFrame:
    """``frame`` with the ``model_version`` and ``as_of_date`` it was computed for (last)."""
    out = frame.drop(columns=["as_of_date", "model_version"], errors="ignore")
    day = pd.Timestamp(as_of).date() if as_of is not None else None
    out["model_version"] = version
    out["as_of_date"] = pd.array([day] * len(out), dtype=pd.ArrowDtype(pa.date32()))
    return out


def check_unique(frame: pd.DataFrame, key: Sequence[str], name: str) -> None:
    """Refuse to publish ``frame`` as ``name`` unless ``key`` is unique and not null."""
    key = list(key)
    nulls = int(frame[key].isna().any(axis=1).sum())
    dup = int(frame.duplicated(key).sum())
    if nulls or dup:
        raise InputError(
            f"table {name} ({len(frame)} rows): key ({', '.join(key)}) has {nulls} null and "
            f"{dup} duplicated row(s); nothing was written"
        )
