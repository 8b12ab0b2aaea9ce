"""Tabular inputs as the estimators take them: Arrow tables, record batch readers or pandas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
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


def sample_rows(n: int, cap: int | None, seed: int, strata: Any = None) -> np.ndarray | None:
    """Sorted indices of a seeded sample of at most ``cap`` of ``n`` rows, or None when all fit.

    With ``strata`` (one value per row) every stratum keeps its share of the rows (largest
    remainders get the rounding), so a rare class is neither lost nor inflated."""
    if cap is None or n <= cap:
        return None
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n, int(cap), replace=False))
    codes = np.unique(pd.Series(strata).astype(str).to_numpy(), return_inverse=True)[1]
    counts = np.bincount(codes)
    quota = counts * (cap / n)
    take = np.floor(quota).astype(np.int64)
    rest = np.argsort(-(quota - take), kind="stable")[: int(cap) - take.sum()]
    take[rest] += 1
    rows = [rng.choice(np.flatnonzero(codes == c), t, replace=False) for c, t in enumerate(take)]
    return np.sort(np.concatenate(rows))


def sorted_unique(values: Any) -> np.ndarray:
    """``np.unique(values)`` by hashing first: only the distinct values are sorted, which on
    millions of text ids is many times faster than numpy's comparison sort of them all."""
    return np.sort(pd.unique(np.asarray(values)))
