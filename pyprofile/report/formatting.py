"""How numbers read in the report: compact amounts and percentages, shared by tiles and plots."""

from __future__ import annotations

import math

import numpy as np


def money(x: float | None) -> str:
    """Compact amount: 1.2M, 34.5k, 678, 9.5."""
    if x is None or not np.isfinite(x):
        return "n/a"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def compact(value: float) -> str:
    """An axis tick: 10, 100, 1k, 10k."""
    if value >= 1000:
        return money(value).replace(".0", "")
    return f"{value:g}"


def pct(x: float | None) -> str:
    """A share as a whole percentage; n/a when unknown."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.0%}"
