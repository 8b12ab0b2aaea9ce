"""Each customer's timeline condensed into the numbers the customer model learns.

The conditional GAN learns a customer's attributes together with these columns, so that
"a young bargain hunter from the north who orders every month, mostly fashion, cheap, often
discounted, browses a lot" is one draw; the timeline generator then writes orders, lines and
sessions consistent with them. Columns (``tl_`` prefix; NaN where they do not apply):

- ``tl_start_at``: the customer's first appearance (sign-up, first order or first visit);
  ``tl_signup_lag_hours``: sign-up after that start (NaN when unknown);
- ``tl_orders``; ``tl_first_order_lag_days`` (start day to first order day);
  ``tl_order_recency_days`` (last order day to the history's last day: recency is what
  churn labels and RFM scores turn on, so it is learned directly rather than as a span);
- ``tl_lines_per_order`` (the customer's mean order lines per order: a ratio, so that the
  baskets' sizes do not hang on how well the generator pairs two counts; a customer with
  few orders and many lines would otherwise get huge baskets); ``tl_price_level`` (mean standardised log unit price of
  the customer's lines within their category: cheap or premium taste);
- ``tl_status_<k>_orders`` (orders with the k-th status, k >= 1; the most common status takes
  the rest); ``tl_discounted_orders`` (orders with a discount). Counts, not shares: the
  calibrated marginal of a count fixes its total over customers, so the shop's return rate
  comes out right even where the generator pairs counts with order
  numbers imperfectly (a share of 1 from a one-order customer would be multiplied by the
  order count of whatever customer it lands on);
- ``tl_category_<k>_share`` (share of lines in the k-th category);
- ``tl_sessions`` (browsing sessions: sessions that end in no order), ``tl_session_lag_days``
  and ``tl_session_recency_days`` (start day to the first, the last to the history's end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyprofile.models.synth.activity import SECONDS_PER_DAY, Indexed, Sessions

PRICE_FLOOR = 0.01


@dataclass
class PriceScale:
    """Per category mean and standard deviation of log unit prices, and the spread of a
    customer's lines around the customer's own level."""

    mean: np.ndarray
    std: np.ndarray
    spread: float


def category_scale(cat: np.ndarray, logp: np.ndarray, n_cat: int) -> tuple[np.ndarray, ...]:
    """Mean and standard deviation of ``logp`` per category code."""
    count = np.bincount(cat, minlength=n_cat).astype(float)
    mean = np.bincount(cat, weights=logp, minlength=n_cat) / np.maximum(count, 1)
    sq = np.bincount(cat, weights=logp**2, minlength=n_cat) / np.maximum(count, 1)
    return mean, np.sqrt(np.maximum(sq - mean**2, 1e-6))


def line_z(ix: Indexed, scale: PriceScale | None = None) -> tuple[np.ndarray, PriceScale]:
    """Standardised log unit price of every line within its category, and the scale (the
    lines' own, or the ``scale`` given: a private fit standardises by the catalogue's)."""
    cat = ix.p_cat[ix.i_prod]
    logp = np.log(np.maximum(ix.i_price, PRICE_FLOOR))
    if scale is not None:
        return (logp - scale.mean[cat]) / scale.std[cat], scale
    mean, std = category_scale(cat, logp, max(len(ix.categories), 1))
    z = (logp - mean[cat]) / std[cat]
    cust = ix.o_cust[ix.i_order]
    per = np.bincount(cust, weights=z, minlength=ix.n_customers) / np.maximum(
        np.bincount(cust, minlength=ix.n_customers), 1
    )
    spread = float(np.std(z - per[cust])) if len(z) else 1.0
    return z, PriceScale(mean, std, max(spread, 0.05))


def _per_customer(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``values`` per group (NaN for empty groups)."""
    count = np.bincount(group, minlength=n)
    total = np.bincount(group, weights=values, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _day(seconds: np.ndarray) -> np.ndarray:
    return np.floor(seconds / SECONDS_PER_DAY)


def _window(group, seconds, n) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = np.bincount(group, minlength=n)
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(lo, group, seconds.astype(float))
    np.maximum.at(hi, group, seconds.astype(float))
    lo[count == 0] = np.nan
    hi[count == 0] = np.nan
    return count, lo, hi


def customer_summary(
    ix: Indexed, sessions: Sessions, start: np.ndarray, scale: PriceScale | None = None
) -> pd.DataFrame:
    """One row per customer (in customer order): the ``tl_`` columns above (price levels
    against ``scale`` when given)."""
    n = ix.n_customers
    out = {"tl_start_at": _timestamps(start, ix.day0)}
    if np.isfinite(ix.signup).any():
        out["tl_signup_lag_hours"] = (ix.signup - start) / 3600.0
    count, first, last = _window(ix.o_cust, ix.o_sec, n)
    out["tl_orders"] = count.astype(np.int64)
    end_day = ix.n_days - 1
    out["tl_first_order_lag_days"] = _day(first) - _day(start)
    out["tl_order_recency_days"] = end_day - _day(last)
    out.update(_basket_columns(ix, n, scale))
    if ix.o_status is not None:
        for k in range(1, len(ix.statuses)):
            out[f"tl_status_{k}_orders"] = np.bincount(ix.o_cust[ix.o_status == k], minlength=n)
    if ix.o_discount is not None:
        out["tl_discounted_orders"] = np.bincount(ix.o_cust[ix.o_discount > 0], minlength=n)
    browse = sessions.s_order < 0
    count, first, last = _window(sessions.s_cust[browse], sessions.s_start[browse], n)
    if len(ix.e_sec):
        out["tl_sessions"] = count.astype(np.int64)
        out["tl_session_lag_days"] = _day(first) - _day(start)
        out["tl_session_recency_days"] = end_day - _day(last)
    return pd.DataFrame(out)


def _basket_columns(ix: Indexed, n: int, scale: PriceScale | None) -> dict[str, np.ndarray]:
    """Lines, price level and category shares per customer."""
    cust = ix.o_cust[ix.i_order]
    z, _ = line_z(ix, scale)
    orders = np.bincount(ix.o_cust, minlength=n)
    lines = np.bincount(cust, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_order = np.where(orders > 0, lines / orders, np.nan)
    out = {
        "tl_lines_per_order": per_order,
        "tl_price_level": _per_customer(cust, z, n),
    }
    if len(ix.categories) > 1:
        cat = ix.p_cat[ix.i_prod]
        for k in range(len(ix.categories)):
            out[f"tl_category_{k}_share"] = _per_customer(cust, (cat == k).astype(float), n)
    return out


def _timestamps(seconds: np.ndarray, day0: int) -> pd.Series:
    base = np.datetime64(day0, "D").astype("datetime64[us]")
    values = np.where(np.isfinite(seconds), seconds, 0) * 1e6
    stamps = base + values.astype(np.int64).astype("timedelta64[us]")
    return pd.Series(stamps).where(np.isfinite(seconds))
