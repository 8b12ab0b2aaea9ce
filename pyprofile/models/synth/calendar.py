"""When customers act: a smoothed daily intensity over the history and an hour profile per
weekday, learned from real timelines and used to place synthetic orders and sessions.

The daily intensity is estimated from each customer's *interior* activity (the first and last
event of a customer are placed by the customer model, not by the calendar): every customer
contributes exposure over its own window, so a day with few active customers is not mistaken
for a quiet day. The estimate is a weekday factor times a 7-day moving trend, so the weekly
cycle, the yearly wave and holiday peaks survive while single days are not memorised.
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86_400
EM_ROUNDS = 4
TREND_WINDOW = 7


def _exposure(first: np.ndarray, last: np.ndarray, rate: np.ndarray, n_days: int) -> np.ndarray:
    """Sum over customers of ``rate`` on every day of their window [first, last]."""
    diff = np.zeros(n_days + 1)
    np.add.at(diff, first, rate)
    np.add.at(diff, last + 1, -rate)
    return np.cumsum(diff)[:n_days]


def _smooth(raw: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Weekday factor x centred moving average of the weekday-adjusted intensity."""
    ok = np.isfinite(raw) & (raw > 0)
    if not ok.any():
        return np.ones(len(raw))
    factor = np.ones(7)
    for d in range(7):
        sel = ok & (weekday == d)
        if sel.any():
            factor[d] = np.median(raw[sel])
    factor /= factor.mean()
    adjusted = np.where(ok, raw / factor[weekday], np.nan)
    fill = np.nanmedian(adjusted)
    adjusted = np.where(np.isnan(adjusted), fill, adjusted)
    kernel = np.ones(TREND_WINDOW) / TREND_WINDOW
    padded = np.pad(adjusted, TREND_WINDOW // 2, mode="edge")
    trend = np.convolve(padded, kernel, mode="valid")
    out = np.maximum(trend * factor[weekday], 1e-6)
    return out / out.mean()


def daily_intensity(
    first: np.ndarray,
    last: np.ndarray,
    interior: np.ndarray,
    days: np.ndarray,
    n_days: int,
    day0_weekday: int,
) -> np.ndarray:
    """Relative intensity per day (mean 1).

    ``first``/``last``: each customer's window (day indices); ``interior``: how many events
    the customer has inside it; ``days``: the days of all those interior events. A customer
    with m events over a window of intensity mass W is expected to act m * w(d) / W times on
    day d, so w(d) = count(d) / sum over customers active on d of m / W, iterated.
    """
    weekday = (day0_weekday + np.arange(n_days)) % 7
    counts = np.bincount(np.clip(days, 0, n_days - 1), minlength=n_days).astype(float)
    keep = interior > 0
    if not keep.any() or counts.sum() == 0:
        return np.ones(n_days)
    first = np.clip(first[keep], 0, n_days - 1)
    last = np.clip(np.maximum(last[keep], first), 0, n_days - 1)
    m = interior[keep].astype(float)
    w = np.ones(n_days)
    for _ in range(EM_ROUNDS):
        cum = np.concatenate([[0.0], np.cumsum(w)])
        mass = np.maximum(cum[last + 1] - cum[first], 1e-9)
        exposure = _exposure(first, last, m / mass, n_days)
        raw = np.where(exposure > 1e-9, counts / np.maximum(exposure, 1e-9), np.nan)
        w = _smooth(raw, weekday)
    return w


class DaySampler:
    """Days in [lo, hi] with probability proportional to the daily intensity."""

    def __init__(self, weights: np.ndarray):
        self.cdf = np.concatenate([[0.0], np.cumsum(weights)])
        self.n_days = len(weights)

    def days(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo = np.clip(lo, 0, self.n_days - 1)
        hi = np.clip(np.maximum(hi, lo), 0, self.n_days - 1)
        a, b = self.cdf[lo], self.cdf[hi + 1]
        u = a + rng.random(len(lo)) * (b - a)
        return np.clip(np.searchsorted(self.cdf, u, side="right") - 1, lo, hi)


def hour_profile(seconds: np.ndarray, day0_weekday: int) -> np.ndarray:
    """(7, 24) probabilities of the hour of day per weekday (add-one smoothed)."""
    day = seconds // SECONDS_PER_DAY
    hour = (seconds % SECONDS_PER_DAY) // 3600
    weekday = (day0_weekday + day) % 7
    counts = np.ones((7, 24))
    np.add.at(counts, (weekday.astype(np.int64), hour.astype(np.int64)), 1.0)
    return counts / counts.sum(1, keepdims=True)


def seconds_in_day(
    rng: np.random.Generator, days: np.ndarray, profile: np.ndarray, day0_weekday: int
) -> np.ndarray:
    """A time (seconds since the history's start) on each day, hour drawn from the weekday's
    profile, minute and second uniform."""
    weekday = (day0_weekday + days) % 7
    cum = np.cumsum(profile, 1)[weekday]
    hour = np.minimum((rng.random(len(days))[:, None] > cum).sum(1), 23)
    return days * SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, len(days))
