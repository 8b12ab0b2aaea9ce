"""Each synthetic customer's timeline, consistent with the customer's summary row.

Given the customer model's row (start, order count, first-order lag, recency, basket size, price
level, status, discount and category shares, browsing sessions and their window), the
timeline model writes:

- **orders**: the first on start + lag, the last ``recency`` days before the history's end,
  the others on days drawn by the shop's daily intensity inside that window (weekly cycle,
  yearly wave, holiday peaks); hours from the weekday's hour profile; statuses and discounts
  allocated by the customer's shares (systematic rounding, not a noisy draw);
- **lines**: the customer's lines per order (extra lines spread over its orders at random),
  categories allocated by its shares, products by popularity and price level; quantities,
  discounts and amounts from the real distributions;
- **sessions and events**: a purchase session replayed from a real session template ending at
  each order (at the real share of orders that have one), and browsing sessions on days drawn
  in the customer's browsing window, each replayed from a browsing template.

All draws come from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyprofile.models.synth import calendar as cal
from pyprofile.models.synth.activity import SECONDS_PER_DAY, Indexed, Sessions
from pyprofile.models.synth.baskets import (
    KERNEL_SD,
    BasketModel,
    draw_quantile,
    fit_baskets,
    spread_lines,
)
from pyprofile.models.synth.templates import Replay, Templates, choose, fit_templates, replay

RATE_QUANTILE = 0.99


@dataclass
class Calendar:
    day0: int
    n_days: int
    end_second: int  # the latest real activity (seconds since day0)
    order_days: np.ndarray
    session_days: np.ndarray
    order_hours: np.ndarray
    session_hours: np.ndarray
    order_rate_cap: float = np.inf  # 99th percentile of (events - 1) / window days
    session_rate_cap: float = np.inf

    @property
    def weekday0(self) -> int:
        return int((self.day0 + 3) % 7)  # 1970-01-01 was a Thursday (Monday = 0)


def _interior(group: np.ndarray, seconds: np.ndarray, n: int):
    """Per group window (first, last day) and interior count, plus the interior days."""
    order = np.lexsort((seconds, group))
    g, day = group[order], seconds[order] // SECONDS_PER_DAY
    count = np.bincount(g, minlength=n)
    first_pos = np.r_[0, np.cumsum(count)[:-1]]
    last_pos = first_pos + count - 1
    rank = np.arange(len(g)) - first_pos[g]
    inner = (rank > 0) & (rank < count[g] - 1)
    has = count > 0
    first = np.where(has, day[np.minimum(first_pos, len(g) - 1)], 0) if len(g) else np.zeros(n, int)
    last = np.where(has, day[np.clip(last_pos, 0, len(g) - 1)], 0) if len(g) else np.zeros(n, int)
    return first, last, np.maximum(count - 2, 0), day[inner]


def fit_calendar(ix: Indexed, sessions: Sessions) -> Calendar:
    """Daily intensities and hour profiles of orders and browsing sessions."""
    n, weekday0 = ix.n_customers, int((ix.day0 + 3) % 7)
    browse = sessions.s_order < 0
    curves, caps = [], []
    for group, seconds in (
        (ix.o_cust, ix.o_sec),
        (sessions.s_cust[browse], sessions.s_start[browse]),
    ):
        first, last, interior, days = _interior(group, seconds, n)
        curves.append(cal.daily_intensity(first, last, interior, days, ix.n_days, weekday0))
        count = np.bincount(group, minlength=n)
        rate = (count - 1) / (last - first + 1.0)
        caps.append(
            float(np.quantile(rate[count > 1], RATE_QUANTILE)) if (count > 1).any() else 1.0
        )
    end = max(
        int(ix.o_sec.max()) if len(ix.o_sec) else 0, int(ix.e_sec.max()) if len(ix.e_sec) else 0
    )
    return Calendar(
        day0=ix.day0,
        n_days=ix.n_days,
        end_second=end,
        order_days=curves[0],
        session_days=curves[1],
        order_hours=cal.hour_profile(ix.o_sec, weekday0),
        session_hours=cal.hour_profile(sessions.s_start[browse], weekday0),
        order_rate_cap=caps[0],
        session_rate_cap=caps[1],
    )


@dataclass
class TimelineModel:
    """Calendar, basket model, session templates and the share of orders with a session."""

    calendar: Calendar
    baskets: BasketModel
    templates: Templates
    session_share: float
    statuses: list
    event_types: list
    has_discount: bool

    @classmethod
    def fit(cls, ix: Indexed, sessions: Sessions, rng, *, view_event, max_templates):
        view_code = ix.event_types.index(view_event) if view_event in ix.event_types else None
        share = float(np.mean(sessions.o_session >= 0)) if len(sessions.o_session) else 0.0
        return cls(
            calendar=fit_calendar(ix, sessions),
            baskets=fit_baskets(ix, view_code),
            templates=fit_templates(ix, sessions, rng, max_templates),
            session_share=share if len(ix.e_sec) else 0.0,
            statuses=list(ix.statuses),
            event_types=list(ix.event_types),
            has_discount=ix.o_discount is not None,
        )

    # ------------------------------------------------------------------ generation
    def generate(self, summary: pd.DataFrame, rng: np.random.Generator) -> dict:
        """Orders, lines and events (integer-coded) of the customers in ``summary``."""
        c = self.calendar
        if "tl_start_at" in summary:
            start = _seconds_since(summary["tl_start_at"], c.day0)
        else:  # a private customer model may leave it out (hidden by its noise)
            start = self._starts(len(summary), rng)
        start = np.clip(np.nan_to_num(start, nan=0.0), 0, c.end_second).astype(np.int64)
        orders = self._orders(summary, start // SECONDS_PER_DAY, rng)
        lines = self._lines(summary, orders, rng)
        self._amounts(orders, lines, rng)
        events = self._events(summary, start // SECONDS_PER_DAY, orders, lines, rng)
        return {"start": start, "orders": orders, "lines": lines, "events": events}

    def _starts(self, n: int, rng) -> np.ndarray:
        """Start times drawn by the order intensity over the whole history."""
        c = self.calendar
        days = cal.DaySampler(c.order_days).days(rng, np.zeros(n, np.int64), np.full(n, c.n_days))
        return cal.seconds_in_day(rng, days, c.order_hours, c.weekday0).astype(float)

    def _window(self, s, start_day, count, lag_col, recency_col, rng, days, hours, cap):
        """Times of ``count`` events per customer: the first on start + lag, the last on the
        history's last day - recency, the others on days drawn by the daily intensity."""
        last_day = self.calendar.n_days - 1
        first = np.clip(start_day + np.round(_filled(s, lag_col, 0.0)), 0, last_day)
        last = last_day - np.round(np.maximum(_filled(s, recency_col, 0.0), 0))
        last = np.where(count > 1, np.clip(last, first, last_day), first)
        # never denser than the densest real customers: widen the window (earlier first,
        # then later last) where the counts drawn do not fit in it
        need = np.ceil((count - 1) / cap) - 1 - (last - first)
        first = np.where(need > 0, np.maximum(first - need, np.minimum(start_day, first)), first)
        need = np.ceil((count - 1) / cap) - 1 - (last - first)
        last = np.where(need > 0, np.minimum(last + need, last_day), last).astype(np.int64)
        first = first.astype(np.int64)
        cust = np.repeat(np.arange(len(s)), count)
        rank = np.arange(len(cust)) - np.repeat(np.cumsum(count) - count, count)
        day = cal.DaySampler(days).days(rng, first[cust], last[cust])
        day = np.where(rank == 0, first[cust], day)
        day = np.where((rank == count[cust] - 1) & (rank > 0), last[cust], day)
        sec = cal.seconds_in_day(rng, day, hours, self.calendar.weekday0)
        order = np.lexsort((sec, cust))
        return cust[order], sec[order]

    def _orders(self, s: pd.DataFrame, start_day: np.ndarray, rng) -> dict:
        c = self.calendar
        count = _counts(s, "tl_orders")
        cust, sec = self._window(
            s,
            start_day,
            count,
            "tl_first_order_lag_days",
            "tl_order_recency_days",
            rng,
            c.order_days,
            c.order_hours,
            c.order_rate_cap,
        )
        status = None
        if self.statuses:
            status = allocate(self._status_shares(s, count), count, rng)
        share = np.clip(_counts(s, "tl_discounted_orders") / np.maximum(count, 1), 0, 1)
        discounted = allocate(np.c_[1 - share, share], count, rng) == 1
        return {"customer": cust, "seconds": sec, "status": status, "discounted": discounted}

    def _status_shares(self, s: pd.DataFrame, count: np.ndarray) -> np.ndarray:
        """Each customer's share of orders per status, from its status counts (scaled down
        when they add up to more than its orders)."""
        k = len(self.statuses)
        counts = np.zeros((len(s), k))
        for j in range(1, k):
            counts[:, j] = _counts(s, f"tl_status_{j}_orders")
        scale = np.maximum(counts.sum(1), count)
        counts[:, 0] = scale - counts[:, 1:].sum(1)
        return counts / np.maximum(scale, 1)[:, None]

    def _tastes(self, s: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's category shares (global shares when unknown) and price level."""
        b = self.baskets
        k = len(b.cat_share)
        cols = [f"tl_category_{j}_share" for j in range(k)]
        if k > 1 and all(col in s for col in cols):
            shares = np.clip(s[cols].to_numpy(float), 0, None)
            bad = ~np.isfinite(shares).all(1) | (np.nan_to_num(shares).sum(1) <= 0)
            shares = np.where(bad[:, None], b.cat_share[None], np.nan_to_num(shares))
        else:
            shares = np.repeat(b.cat_share[None], len(s), 0)
        level = np.nan_to_num(_filled(s, "tl_price_level", 0.0))
        return shares / shares.sum(1, keepdims=True), level

    def _lines(self, s: pd.DataFrame, orders: dict, rng) -> dict:
        """Lines per order (the customer's mean exactly, up to rounding), their categories
        (the customer's shares exactly, up to rounding), products and quantities."""
        b = self.baskets
        cust = orders["customer"]
        n_orders = np.bincount(cust, minlength=len(s))
        per_order = _filled(s, "tl_lines_per_order", 1.0)
        wanted = np.maximum(per_order - 1, 0) * n_orders  # lines beyond one per order
        extra = np.floor(wanted + rng.random(len(s))).astype(np.int64)
        # each order has one line; the customer's extra lines go to its orders
        n_lines = 1 + spread_lines(extra, n_orders, float(b.dispersion), rng)
        line_order = np.repeat(np.arange(len(cust)), n_lines)
        shares, level = self._tastes(s)
        per_customer = np.bincount(cust[line_order], minlength=len(s))
        category = allocate(shares, per_customer, rng)
        line_cust = np.repeat(np.arange(len(s)), per_customer)
        # ``allocate`` lists lines customer by customer, as ``line_order`` does
        jitter = rng.normal(0.0, np.sqrt(max(b.spread**2 - KERNEL_SD**2, 0.0)), len(line_cust))
        product = b.products(category, level[line_cust] + jitter, rng)
        return {
            "order": line_order,
            "product": product,
            "quantity": b.quantities(len(line_order), rng),
            "unit_price": b.p_price[product],
        }

    def _amounts(self, orders: dict, lines: dict, rng) -> None:
        b = self.baskets
        n = len(orders["customer"])
        gross = np.bincount(
            lines["order"], weights=lines["quantity"] * lines["unit_price"], minlength=n
        )
        frac = draw_quantile(b.discount_q, n, rng)
        discount = np.where(orders["discounted"], np.round(gross * frac, 2), 0.0)
        ratio = draw_quantile(b.ratio_q, n, rng)
        orders["discount"] = discount
        orders["amount"] = np.round(np.maximum(gross - discount, 0) * ratio, 2)

    def _events(self, s, start_day, orders, lines, rng) -> dict:
        t = self.templates
        n_orders = len(orders["customer"])
        has = rng.random(n_orders) < self.session_share
        o_rows = np.flatnonzero(has)
        distinct = pd.DataFrame({"o": lines["order"], "p": lines["product"]}).drop_duplicates()
        distinct = distinct[has[distinct["o"].to_numpy()]]
        count = np.bincount(distinct["o"].to_numpy(), minlength=n_orders)
        begin = np.r_[0, np.cumsum(count)[:-1]]
        browse_cust, browse_start = self._browse(s, start_day, rng)
        purchase = choose(t, 1, count[o_rows], rng)
        browsing = choose(t, 0, np.zeros(len(browse_cust), np.int64), rng)
        r = Replay(
            template=np.r_[purchase, browsing],
            anchor=np.r_[orders["seconds"][o_rows], browse_start],
            customer=np.r_[orders["customer"][o_rows], browse_cust],
            line_start=np.r_[begin[o_rows], np.zeros(len(browse_cust), np.int64)],
            line_count=np.r_[count[o_rows], np.zeros(len(browse_cust), np.int64)],
            line_products=distinct["p"].to_numpy(np.int64),
        )
        shares, _ = self._tastes(s)
        has_orders = np.bincount(orders["customer"], minlength=len(s)) > 0
        view_shares = np.where(has_orders[:, None], shares, self.baskets.view_cat_share[None])

        def draw(session_rows, rng):
            cum = np.cumsum(view_shares[r.customer[session_rows]], 1)
            u = rng.random(len(session_rows))[:, None]
            category = np.minimum((u > cum).sum(1), cum.shape[1] - 1)
            return self.baskets.products(category, np.zeros(len(category)), rng, view=True)

        events = replay(t, r, draw, rng)
        events["customer"] = r.customer[events["session"]]
        return events

    def _browse(self, s: pd.DataFrame, start_day: np.ndarray, rng):
        c = self.calendar
        count = _counts(s, "tl_sessions")
        return self._window(
            s,
            start_day,
            count,
            "tl_session_lag_days",
            "tl_session_recency_days",
            rng,
            c.session_days,
            c.session_hours,
            c.session_rate_cap,
        )


def _counts(s: pd.DataFrame, column: str) -> np.ndarray:
    if column not in s:
        return np.zeros(len(s), np.int64)
    x = pd.to_numeric(s[column], errors="coerce").fillna(0).to_numpy(float)
    return np.maximum(np.round(x), 0).astype(np.int64)


def allocate(shares: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Codes for ``counts[i]`` items of each row i (rows in order), with each code's number
    of items its share times the count, rounded systematically (so a customer's realised
    shares are its shares, not a noisy draw from them), shuffled within the row."""
    k = shares.shape[1]
    shares = np.nan_to_num(np.clip(shares, 0, None))
    total = shares.sum(1, keepdims=True)
    shares = np.where(total > 0, shares / np.where(total > 0, total, 1), 1.0 / k)
    cum = np.cumsum(shares * counts[:, None], 1)
    cum[:, -1] = counts  # exact total, whatever the float error
    u = rng.random(len(counts))[:, None]
    edges = np.floor(cum + u) - np.floor(u)
    per_code = np.diff(np.c_[np.zeros(len(counts)), edges], axis=1).astype(np.int64)
    codes = np.repeat(np.tile(np.arange(k), len(counts)), per_code.ravel())
    row = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((rng.random(len(codes)), row))
    return codes[order]


def _filled(s: pd.DataFrame, column: str, default: float) -> np.ndarray:
    """A summary column as floats, NaN replaced by the column's median (else ``default``)."""
    if column not in s:
        return np.full(len(s), default)
    x = pd.to_numeric(s[column], errors="coerce").to_numpy(float)
    fill = np.nanmedian(x) if np.isfinite(x).any() else default
    return np.where(np.isfinite(x), x, fill)


def _seconds_since(stamps: pd.Series, day0: int) -> np.ndarray:
    ts = pd.to_datetime(stamps)
    values = ts.to_numpy(dtype="datetime64[us]").astype(np.int64).astype(float) / 1e6
    values[ts.isna().to_numpy()] = np.nan
    return values - day0 * SECONDS_PER_DAY
