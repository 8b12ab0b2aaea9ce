"""Differential privacy for the synthesizer (``Synthesizer(epsilon=...)``).

The guarantee is (epsilon, delta)-differential privacy for adding or removing one row of the
table the synthesizer learns from. Everything the fitted model holds that depends on the rows
is released through one of three mechanisms, composed by opacus' RDP accountant:

1. **A private summary** (the Gaussian mechanism, twice): every column's category counts and a
   coarse histogram of every numeric column (one row adds 1 to one cell of each column, so the
   L2 sensitivity is the square root of the column count); then a finer histogram of each
   numeric column over the range the first release found. Categories are released only when
   their noisy count clears a threshold (a value held by one row appears with probability at
   most ``delta / 2`` over all columns); numeric histograms live on a fixed public grid (dates and timestamps: quarters from 1900 to
   2100, values outside counted at the ends). The
   encoding's quantiles, null shares and category frequencies come from these counts only.
2. **DP-SGD for the critic** (the only network that sees real rows): Poisson-sampled rows,
   per-row gradients (``torch.func``; the gradient penalty included), clipped to ``clip`` and
   summed with Gaussian noise. The generator learns only through the critic (post-processing).
3. The rest is post-processing: calibration maps generated values onto the released quantiles
   and category frequencies; no real row is read after the summary and the critic's steps.

Treated as public (not protected): the column names and types, which columns are ids or
personal data by name, the row count, and the caller's choice of discrete columns. The noise
and the row sampling come from the operating system's entropy, never from ``random_state``:
a seeded noise could be subtracted, so a private fit is not repeatable.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from scipy.special import ndtri

from pyprofile.errors import InputError
from pyprofile.models.synth.transformer import DAY_US, QUANTILES

SUMMARY_SHARE = 0.2  # of epsilon spent on the summary (alone); DP-SGD gets the rest
SPURIOUS = 0.01  # chance that an empty cell of a histogram looks filled, per histogram
RANGE_SPURIOUS = 1e-4  # the same for the first release, whose filled cells set the range
COARSE_WIDTH = 0.5  # first release: cells of this width in asinh(x), over +-COARSE_LIMIT
COARSE_LIMIT = 40.0  # asinh(2e17): microsecond timestamps fit
MAX_BLOCK = 8  # widest block of first-release cells (4 on asinh: a factor of about 50)
MIN_BINS, MAX_BINS = 8, 128  # second release: as many cells as the noise allows
FLOAT_ATOMS = (0.0, 1.0)  # float values released as point masses of their own
DATE_WINDOW = (-25_567, 47_482)  # 1900-01-01 .. 2100-01-01 in days from 1970


def _accountant():
    try:
        from opacus.accountants import RDPAccountant
    except ImportError as exc:  # an optional dependency
        raise InputError(
            "differential privacy needs opacus: pip install 'pyprofile[privacy]'"
        ) from exc
    return RDPAccountant()


# Renyi orders searched for the tightest bound (opacus' defaults stop at 63, too low for a
# release over all rows with much noise)
ORDERS = [1 + x / 10 for x in range(1, 100)] + list(range(11, 64)) + [2**k for k in range(6, 13)]


def spent(history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon of the composed (noise multiplier, sample rate, steps) mechanisms at ``delta``."""
    accountant = _accountant()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta, alphas=ORDERS))


def solve_noise(epsilon_of, target: float) -> float:
    """The smallest noise multiplier whose epsilon (decreasing in it) is at most ``target``."""
    lo, hi = 0.05, 1.0
    while epsilon_of(hi) > target:
        lo, hi = hi, hi * 2
        if hi > 1e6:
            raise InputError(f"epsilon {target:g} is too small to reach with any noise")
    while hi - lo > 1e-4 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if epsilon_of(mid) > target else (lo, mid)
    return hi


@dataclass(frozen=True)
class Budget:
    """How an (epsilon, delta) budget is spent: two summary releases, then DP-SGD."""

    epsilon: float
    delta: float
    summary_noise: float  # noise multiplier of each summary release (sd / sensitivity)
    sgd_noise: float  # noise multiplier of the critic's steps
    sample_rate: float
    steps: int

    @property
    def history(self) -> list[tuple[float, float, int]]:
        return [(self.summary_noise, 1.0, 2), (self.sgd_noise, self.sample_rate, self.steps)]

    def spent(self) -> float:
        """The composed epsilon at half of delta (the other half covers category thresholds)."""
        return spent(self.history, self.delta / 2)


def check_budget(epsilon: float, delta: float) -> None:
    """One clear line for an epsilon or delta that cannot be a privacy budget."""
    if not epsilon > 0 or not math.isfinite(epsilon):
        raise InputError(f"epsilon must be a positive number, got {epsilon}")
    if not 0 < delta < 1:
        raise InputError(f"delta must be between 0 and 1, got {delta}")


def plan(epsilon: float, delta: float, sample_rate: float, steps: int) -> Budget:
    """Noise multipliers that spend exactly ``epsilon``: the summary alone costs
    ``SUMMARY_SHARE`` of it, DP-SGD the rest (composed, not added)."""
    check_budget(epsilon, delta)
    half = delta / 2
    summary = solve_noise(lambda s: spent([(s, 1.0, 2)], half), SUMMARY_SHARE * epsilon)
    sgd = solve_noise(lambda s: spent([(summary, 1.0, 2), (s, sample_rate, steps)], half), epsilon)
    return Budget(epsilon, delta, summary, sgd, sample_rate, steps)


def secret_rng() -> tuple[np.random.Generator, torch.Generator]:
    """Generators seeded from the operating system's entropy (never from ``random_state``)."""
    seed = secrets.randbits(63)
    return np.random.default_rng(seed), torch.Generator().manual_seed(seed)


class PrivateSummary:
    """The noisy counts the transformer is fitted from (see the module docstring, item 1)."""

    def __init__(self, noise_multiplier: float, delta: float, rng: np.random.Generator):
        self.noise_multiplier, self.delta, self.rng = noise_multiplier, delta, rng

    def bind(self, n_columns: int, n_numeric: int, n_timestamps: int = 0) -> None:
        """Noise for the tables' column counts (call once, before any release); a timestamp
        column adds one more count to the first release (:meth:`days_only`)."""
        self.sd_first = self.noise_multiplier * math.sqrt(max(n_columns + n_timestamps, 1))
        self.sd_second = self.noise_multiplier * math.sqrt(max(n_numeric, 1))
        # a category held by one row clears the bar with probability delta / 2 / n_columns
        self.category_bar = 1 + self.sd_first * ndtri(1 - self.delta / 2 / max(n_columns, 1))

    def _noisy(self, counts: np.ndarray, sd: float) -> np.ndarray:
        return counts + self.rng.normal(0.0, sd, size=counts.shape)

    def categories(self, col: pa.ChunkedArray) -> tuple[list, list[int]]:
        """Released categories (nulls included), most frequent first, with noisy counts."""
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        vc = pc.value_counts(col)
        values = vc.field("values").to_pylist()
        noisy = self._noisy(vc.field("counts").to_numpy().astype(float), self.sd_first)
        keep = np.flatnonzero(noisy >= self.category_bar)
        keep = keep[np.argsort(-noisy[keep], kind="stable")]
        return [values[i] for i in keep], [max(int(round(noisy[i])), 1) for i in keep]

    def days_only(self, x: np.ndarray) -> bool:
        """Whether a timestamp column (microseconds, NaN = null) holds whole days: its noisy
        count of values off midnight stays under the bar (part of the first release)."""
        valid = x[~np.isnan(x)]
        off = float(np.count_nonzero(valid % DAY_US))
        # a strict bar: whole days are missed only once in a million (a few stray times of
        # day are snapped to midnight instead)
        bar = self.sd_first * float(ndtri(1 - 1e-6))
        return bool(self._noisy(np.array([off]), self.sd_first)[0] < bar)

    def numeric(self, x: np.ndarray, kind: str) -> tuple[np.ndarray, float] | None:
        """(quantile knots, null share) of a column (NaN = null); None when no cell or block
        of cells of the first release clears its bar: the noise hides where the values lie."""
        null = np.isnan(x)
        valid = x[~null]
        # first release: coarse cells on a public grid (the null count comes in the second)
        edges, to_value = _coarse_grid(kind)
        position = np.arcsinh(valid) if to_value is np.sinh else valid
        coarse = np.histogram(np.clip(position, edges[0], edges[-1]), edges)[0]
        coarse = self._noisy(coarse.astype(float), self.sd_first)
        mass = _filled(coarse, self.sd_first, widest=MAX_BLOCK, spurious=RANGE_SPURIOUS)
        if mass is None:
            return None
        kept = np.flatnonzero(mass)
        lo, hi = to_value(edges[kept[0]]), to_value(edges[kept[-1] + 1])
        # second release: finer cells over that range, as many as the noise leaves useful
        total = max(mass.sum(), 1.0)
        bins = int(np.clip(total / (4 * _bar(self.sd_second, MAX_BINS)), MIN_BINS, MAX_BINS))
        grid, fine = _histogram(valid, _grid(lo, hi, bins, kind), kind)
        counts = self._noisy(np.append(fine, null.sum()), self.sd_second)
        nulls = counts[-1] if counts[-1] > _bar(self.sd_second, len(counts)) else 0.0
        fine = _filled(counts[:-1], self.sd_second)
        if fine is None:  # the range is known, its inside is not: even over the range
            fine = np.ones(len(counts) - 1)
        return _knots(grid, fine), float(nulls / (nulls + fine.sum()))


def _coarse_grid(kind: str):
    """(edges, edge -> value) of the first release: quarters from 1900 to 2100 for dates and
    timestamps (values outside are counted at the ends), else cells of ``COARSE_WIDTH`` on
    asinh(x), whose relative width suits amounts and counts of any size."""
    if kind in ("date", "timestamp"):
        unit = 1.0 if kind == "date" else DAY_US  # days, microseconds
        return np.arange(DATE_WINDOW[0], DATE_WINDOW[1] + 91, 91) * unit, lambda e: e
    return np.arange(-COARSE_LIMIT, COARSE_LIMIT + COARSE_WIDTH, COARSE_WIDTH), np.sinh


def _bar(sd: float, cells: int, spurious: float = SPURIOUS) -> float:
    """The count over which a noisy cell is taken as filled: an empty one of ``cells`` passes
    with probability ``spurious`` (post-processing: the grid is public)."""
    return sd * float(ndtri(1 - spurious / cells))


def _filled(
    noisy: np.ndarray, sd: float, widest: int | None = None, spurious: float = SPURIOUS
) -> np.ndarray | None:
    """Each cell's count, 0 for cells taken as empty: the cells over the bar; when none is,
    blocks of 2, 4, 8 ... adjacent cells (a block's noise grows as the square root of its
    size, its count in proportion), the first size at which a block clears its bar, each
    kept block's count spread evenly over its cells; None when no size up to ``widest`` does.
    Post-processing of the released counts only."""
    n, width = len(noisy), 1
    while width < 2 * n and (widest is None or width <= widest):
        blocks = -(-n // width)
        sums = np.bincount(np.arange(n) // width, weights=noisy, minlength=blocks)
        over = sums > _bar(sd * math.sqrt(width), blocks, spurious)
        if over.any():
            cell = np.where(over, np.clip(sums, 1e-9, None) / width, 0.0)
            return np.repeat(cell, width)[:n]
        width *= 2
    return None


def _histogram(valid: np.ndarray, grid: np.ndarray, kind: str):
    """(edges, counts) of the second release. Floats: exact 0 and 1 (no spend, a share of
    all: common point masses at public places) get zero-width cells of their own, so they
    come back as point masses; every value still counts in exactly one cell."""
    atoms = np.array([a for a in FLOAT_ATOMS if kind == "float" and grid[0] <= a <= grid[-1]])
    edges = np.unique(np.concatenate([grid, atoms]))
    plain = valid[~np.isin(valid, atoms)]
    counts = np.histogram(np.clip(plain, edges[0], edges[-1]), edges)[0].astype(float)
    for a in atoms[::-1]:  # the zero-width cell [a, a] goes between the cells that meet at a
        i = int(np.searchsorted(edges, a))
        edges, counts = np.insert(edges, i, a), np.insert(counts, i, np.sum(valid == a))
    return edges, counts


def _grid(lo: float, hi: float, bins: int, kind: str) -> np.ndarray:
    """Cell edges over [lo, hi]: even steps, or even on asinh(x) when the range spans several
    orders of magnitude (amounts, counts); dates and timestamps always even. Integers and
    dates get cells of whole units centred on them when even steps would be finer than 1
    (rounding then gives each value its own cell's mass)."""
    if hi <= lo:
        hi = lo + 1.0
    if kind in ("int", "date") and (hi - lo) / bins <= 1:
        return np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.0)
    spread = np.arcsinh(hi) - np.arcsinh(lo)
    if kind in ("date", "timestamp") or spread < 3:
        return np.linspace(lo, hi, bins + 1)
    return np.sinh(np.linspace(np.arcsinh(lo), np.arcsinh(hi), bins + 1))


def _knots(grid: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Quantiles of the histogram at the transformer's levels (linear inside each cell)."""
    filled = np.flatnonzero(counts > 0)
    if not len(filled):
        return np.full(QUANTILES, (grid[0] + grid[-1]) / 2)
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    levels = np.linspace(0, 1, QUANTILES)
    cell = np.clip(np.searchsorted(cdf, levels, "right") - 1, filled[0], filled[-1])
    step = cdf[cell + 1] - cdf[cell]
    inside = np.clip((levels - cdf[cell]) / np.where(step > 0, step, 1), 0, 1)
    return np.maximum.accumulate(grid[cell] + inside * (grid[cell + 1] - grid[cell]))
