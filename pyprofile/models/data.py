"""Tabular inputs as the estimators take them: Arrow tables, record batch readers or pandas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from pyprofile.errors import InputError


def as_frame(data: Any, what: str = "input") -> pd.DataFrame:
    """A pandas DataFrame from an Arrow table, record batch reader or DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    if isinstance(data, pa.Table):
        return data.to_pandas()
    raise InputError(
        f"{what}: expected an Arrow table or pandas DataFrame, got {type(data).__name__}"
    )


def as_arrow(data: Any, what: str = "input") -> pa.Table:
    """An Arrow table from an Arrow table, record batch reader or pandas DataFrame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InputError(
        f"{what}: expected an Arrow table or pandas DataFrame, got {type(data).__name__}"
    )


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a clear error naming the missing columns of ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} ({len(frame)} rows) lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
