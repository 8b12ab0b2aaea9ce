"""Vectorised draws shared by the demo tables."""

from __future__ import annotations

import numpy as np


def choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (u > cum).sum(axis=1)


class DaySampler:
    """Draws days in [lo, hi] with probability proportional to the daily weights."""

    def __init__(self, weights: np.ndarray):
        self.cdf = np.concatenate([[0.0], np.cumsum(weights)])

    def days(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        a, b = self.cdf[lo], self.cdf[hi + 1]
        u = a + rng.random(len(lo)) * (b - a)
        return np.clip(np.searchsorted(self.cdf, u, side="right") - 1, lo, hi)
