"""Differential privacy for a whole synthetic shop (``RelationalSynthesizer(epsilon=...)``).

The guarantee is (epsilon, delta)-differential privacy for adding or removing one *customer*
with every order, line and event of theirs. Two mechanisms share the budget by basic
composition (their epsilons and deltas add up to the ones asked for):

1. **The customer model** (``1 - TIMELINE_SHARE`` of epsilon, half of delta): a private
   :class:`~pyprofile.models.synth.synthesizer.Synthesizer` over one row per customer (the
   customer's attributes next to its timeline summary), see :mod:`.dp`.
2. **The timeline model** (``TIMELINE_SHARE`` of epsilon, half of delta), released here once by
   the Gaussian mechanism. Every statistic is a sum over customers of a per-customer vector
   (a *block*) scaled to L2 norm 1, so one customer moves the concatenation of the B blocks
   by at most sqrt(B); every cell gets Gaussian noise of sd ``noise multiplier x sqrt(B)``, the
   multiplier set by opacus' RDP accountant at a quarter of delta. Blocks, all on public grids:
   when orders and browsing sessions happen (interior events and exposure per 28 days of
   the history, per weekday; hour of day on weekdays and weekends; the customer's rate, on a log
   grid), which products are bought and viewed (each customer's distinct products), quantities,
   discount fractions and the amount-to-lines ratio (fixed histograms), a few per-customer
   ratios (share of orders with a session, spread of prices, over-dispersion of basket sizes),
   and the sessions: transitions between (event type, product role) states, the gaps between
   events and each session's shape (line events x events), for purchase and browsing
   sessions. Order statuses and event types are released only when their noisy count clears
   a bar that a value held by one customer passes with probability at most delta / 512 each
   (under a quarter of delta over the up to 72 values of both lists).

The rest is post-processing of the released numbers: daily intensity (a 28-day trend times a
weekday factor), hour profiles, rate caps, popularity, quantiles, and session *templates*
generated from the noisy Markov chain (no real session is copied). Treated as public, not
protected: the history's first and last day (the export's dates), the product catalogue (ids,
categories, prices — the catalogue's price column is used when there is one, else unit prices
are released per product as noisy means), the column names and types, the caller's event
names and the number of customers. Noise comes from the operating system's entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.special import ndtri

from pyprofile.models.synth import dp
from pyprofile.models.synth.activity import MAX_STATUSES, SECONDS_PER_DAY, Indexed, Sessions
from pyprofile.models.synth.baskets import QUANTILES, SMOOTHING, BasketModel, dispersion_terms
from pyprofile.models.synth.summary import PRICE_FLOOR, PriceScale, category_scale
from pyprofile.models.synth.templates import LINE, OTHER, Templates, roles
from pyprofile.models.synth.timeline import Calendar, TimelineModel

TIMELINE_SHARE = 0.3  # of epsilon for the timeline; the customer model gets the rest
MAX_EVENT_TYPES = 64
PERIOD = 28  # days: the trend's resolution (weeks left too few events per cell for the noise)
RATE_EDGES = np.geomspace(1 / 3650, 50, 41)  # events per day
GAP_EDGES = np.r_[0.0, np.geomspace(1, 7 * SECONDS_PER_DAY, 48)]  # seconds between events
QTY_MAX = 50
DISCOUNT_EDGES = np.linspace(0, 1, 41)
RATIO_EDGES = np.linspace(0, 3, 121)
LOGP_RANGE = (-5.0, 15.0)  # clip for released log unit prices (no catalogue price)
PRICE_COLUMNS = ("price", "unit_price", "list_price")
SESSION_LIMIT = 60  # events in a generated session
N_TEMPLATES = 4000  # generated sessions per kind
CANDIDATES = 8  # chain walks per template kept: resampled to the released session shapes
MAX_LINES = 10  # session shape cells: line products (capped) x events (capped)
EMPTY_SHARE = 0.01  # chance that an empty cell of a histogram is taken as filled
START, END = 0, 1


def split_budget(epsilon: float, delta: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """((epsilon, delta) of the customer model, (epsilon, delta) of the timeline)."""
    return ((1 - TIMELINE_SHARE) * epsilon, delta / 2), (TIMELINE_SHARE * epsilon, delta / 2)


@dataclass
class Blocks:
    """Sums over customers of per-customer vectors, each scaled to unit L2 norm."""

    n_customers: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, cust, cell, n_cells: int, value=None) -> None:
        """One block: customer ``cust[i]`` puts ``value[i]`` (default 1) in ``cell[i]``."""
        cust, cell = np.asarray(cust, np.int64), np.asarray(cell, np.int64)
        value = np.ones(len(cust)) if value is None else np.asarray(value, float)
        key = cust * n_cells + np.clip(cell, 0, n_cells - 1)
        uniq, inverse = np.unique(key, return_inverse=True)
        total = np.bincount(inverse, weights=value, minlength=len(uniq)).astype(float)
        owner = uniq // n_cells
        norm = np.sqrt(np.bincount(owner, weights=total**2, minlength=self.n_customers))[owner]
        scaled = np.divide(total, norm, out=np.zeros_like(total), where=norm > 0)
        self.sums[name] = np.bincount(uniq % n_cells, weights=scaled, minlength=n_cells).astype(
            float
        )

    def release(self, noise_multiplier: float, rng) -> tuple[dict[str, np.ndarray], float]:
        """Every block plus Gaussian noise, and the noise's sd."""
        sd = noise_multiplier * math.sqrt(max(len(self.sums), 1))
        return {k: v + rng.normal(0.0, sd, v.shape) for k, v in self.sums.items()}, sd


@dataclass
class PrivateTimeline:
    """What :func:`fit_private` releases: the timeline model, the shop re-coded to the released
    statuses, the price scale the summary uses, and the epsilon and delta spent."""

    timeline: TimelineModel
    ix: Indexed
    scale: PriceScale
    epsilon: float
    delta: float


def fit_private(
    ix: Indexed,
    sessions: Sessions,
    products: pd.DataFrame,
    rng: np.random.Generator,
    *,
    epsilon: float,
    delta: float,
    purchase_event: str,
    view_event: str,
) -> PrivateTimeline:
    """The timeline model from one Gaussian release (module docstring, item 2)."""
    gauss_delta = delta / 2  # the other half covers the status and event-type bars
    noise = dp.solve_noise(lambda s: dp.spent([(s, 1.0, 1)], gauss_delta), epsilon)
    price = _catalogue_price(products, len(ix.p_cat))
    blocks = _blocks(ix, sessions, price is None, view_event)
    noisy, sd = blocks.release(noise, rng)
    bar = 1 + sd * float(ndtri(1 - delta / 4 / max(MAX_STATUSES, MAX_EVENT_TYPES)))
    ix, statuses = _recode_statuses(ix, noisy["statuses"], bar)
    type_codes = _released(noisy["event_types"], bar)
    if price is None:
        price = _noisy_price(noisy["price"], sd, ix)
    mean, std = category_scale(ix.p_cat, np.log(np.maximum(price, PRICE_FLOOR)), _n_cat(ix))
    scalars = _ratios(noisy["scalars"], sd)
    # the spread is released in log-price units: in units of the typical category's spread
    typical = float(np.average(std, weights=np.bincount(ix.p_cat, minlength=len(std)) + 1e-9))
    scale = PriceScale(mean, std, max(scalars["spread"] / max(typical, 1e-3), 0.05))
    timeline = TimelineModel(
        calendar=_calendar(noisy, sd, ix),
        baskets=_baskets(noisy, sd, ix, price, scale, scalars["dispersion"]),
        templates=_templates(noisy, sd, ix, type_codes, purchase_event, rng),
        session_share=scalars["session_share"] if len(ix.e_sec) else 0.0,
        statuses=statuses,
        event_types=[ix.event_types[c] for c in type_codes],
        has_discount=ix.o_discount is not None,
    )
    spent = dp.spent([(noise, 1.0, 1)], gauss_delta)
    return PrivateTimeline(timeline, ix, scale, spent, delta)


# ---------------------------------------------------------------------- blocks
def _n_cat(ix: Indexed) -> int:
    return max(len(ix.categories), 1)


def _catalogue_price(products: pd.DataFrame, n: int) -> np.ndarray | None:
    for name in PRICE_COLUMNS:
        if name in products:
            price = pd.to_numeric(products[name], errors="coerce").to_numpy(float)
            good = np.isfinite(price) & (price > 0)
            if len(price) == n and good.any():
                return np.where(good, price, np.median(price[good]))
    return None


def _blocks(ix: Indexed, sessions: Sessions, price_block: bool, view_event: str) -> Blocks:
    b = Blocks(ix.n_customers)
    weekday0 = int((ix.day0 + 3) % 7)
    browse = sessions.s_order < 0
    rate_cust, rate_cell = [], []
    for k, (name, group, seconds) in enumerate(
        (
            ("orders", ix.o_cust, ix.o_sec),
            ("sessions", sessions.s_cust[browse], sessions.s_start[browse]),
        )
    ):
        many, rate = _time_blocks(b, name, group, seconds, ix.n_days, weekday0)
        rate_cust.append(many)
        rate_cell.append(k * len(RATE_EDGES) + np.searchsorted(RATE_EDGES, rate))
    # each customer's rate of orders and of browsing sessions, on a log grid
    b.add("rates", np.concatenate(rate_cust), np.concatenate(rate_cell), 2 * len(RATE_EDGES))
    line_cust = ix.o_cust[ix.i_order]
    b.add("buy", *_distinct(line_cust, ix.i_prod), len(ix.p_cat))
    view_code = ix.event_types.index(view_event) if view_event in ix.event_types else -1
    viewed = (ix.e_type == view_code) & (ix.e_prod >= 0)
    b.add("view", *_distinct(ix.e_cust[viewed], ix.e_prod[viewed]), len(ix.p_cat))
    b.add("quantity", line_cust, np.minimum(ix.i_qty, QTY_MAX) - 1, QTY_MAX)
    _amount_blocks(b, ix)
    cust, cell, value = _scalar_entries(ix, sessions)
    b.add("scalars", cust, cell, 6, value)
    if ix.o_status is not None:
        b.add("statuses", ix.o_cust, ix.o_status, MAX_STATUSES)
    else:
        b.add("statuses", [], [], MAX_STATUSES)
    b.add("event_types", ix.e_cust, ix.e_type, MAX_EVENT_TYPES)
    _session_blocks(b, ix, sessions)
    if price_block:
        _price_block(b, ix)
    return b


def _distinct(cust: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(cust):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.c_[cust, item].astype(np.int64), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _time_blocks(b: Blocks, name: str, group, seconds, n_days: int, weekday0: int):
    """Interior events per period, exposure per period, interior events per weekday (one
    block); hour of day on weekdays and weekends (another). Returns the customers with two
    events or more and their rates ((events - 1) / window days)."""
    n = b.n_customers
    n_periods = n_days // PERIOD + 1
    order = np.lexsort((seconds, group))
    g, day = group[order], seconds[order] // SECONDS_PER_DAY
    count = np.bincount(g, minlength=n)
    begin = np.cumsum(count) - count
    rank = np.arange(len(g)) - begin[g]
    inner = (rank > 0) & (rank < count[g] - 1)
    m = np.maximum(count - 2, 0)
    has = np.flatnonzero(m > 0)
    first, last = day[begin[has]], day[begin[has] + count[has] - 1]
    p0 = first // PERIOD
    reps = last // PERIOD - p0 + 1
    cust = np.repeat(has, reps)
    period = np.repeat(p0, reps) + np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    lo = np.maximum(np.repeat(first, reps), period * PERIOD)
    hi = np.minimum(np.repeat(last, reps), period * PERIOD + PERIOD - 1)
    exposure = (hi - lo + 1) * np.repeat(m[has] / (last - first + 1.0), reps)
    weekday = (weekday0 + day[inner]) % 7
    b.add(
        f"{name}_days",
        np.r_[g[inner], cust, g[inner]],
        np.r_[day[inner] // PERIOD, n_periods + period, 2 * n_periods + weekday],
        2 * n_periods + 7,
        np.r_[np.ones(inner.sum()), exposure, np.ones(inner.sum())],
    )
    weekend = (weekday0 + day) % 7 >= 5
    hour = (seconds[order] % SECONDS_PER_DAY) // 3600
    b.add(f"{name}_hours", g, weekend * 24 + hour, 48)
    many = np.flatnonzero(count > 1)
    span = day[begin[many] + count[many] - 1] - day[begin[many]] + 1.0
    return many, (count[many] - 1) / span


def _amount_blocks(b: Blocks, ix: Indexed) -> None:
    """Discount fraction of discounted orders; amount / (line total - discount)."""
    n_orders = len(ix.o_sec)
    gross = np.bincount(ix.i_order, weights=ix.i_qty * ix.i_price, minlength=n_orders)
    discount = ix.o_discount if ix.o_discount is not None else np.zeros(n_orders)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = discount / (ix.o_amount + discount)
        ratio = ix.o_amount / (gross - discount)
    d = np.flatnonzero((discount > 0) & np.isfinite(frac))
    b.add("discount", ix.o_cust[d], _bin(DISCOUNT_EDGES, frac[d]), len(DISCOUNT_EDGES) - 1)
    has_lines = np.bincount(ix.i_order, minlength=n_orders) > 0
    r = np.flatnonzero(has_lines & (gross - discount > 0) & np.isfinite(ratio))
    b.add("ratio", ix.o_cust[r], _bin(RATIO_EDGES, ratio[r]), len(RATIO_EDGES) - 1)


def _bin(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def _scalar_entries(ix: Indexed, sessions: Sessions):
    """(customer, cell, value): share of orders with a session, spread of line prices around
    the customer's level, over-dispersion of extra lines per order, each next to a 1."""
    n = ix.n_customers
    orders = np.bincount(ix.o_cust, minlength=n)
    with_session = np.bincount(ix.o_cust[sessions.o_session >= 0], minlength=n)
    # the spread is released in log-price units (fit_private converts it to z units)
    logp = np.log(np.maximum(ix.i_price, PRICE_FLOOR))
    line_cust = ix.o_cust[ix.i_order]
    lines = np.bincount(line_cust, minlength=n)
    mean = np.bincount(line_cust, weights=logp, minlength=n) / np.maximum(lines, 1)
    var = np.bincount(line_cust, weights=(logp - mean[line_cust]) ** 2, minlength=n)
    sd = np.sqrt(var / np.maximum(lines, 1))
    k, within, expected = dispersion_terms(ix)
    ratio = np.divide(within, expected, out=np.ones(n), where=expected > 0)
    parts = [
        (orders > 0, with_session / np.maximum(orders, 1)),
        (lines > 1, np.clip(sd, 0, 3) / 3),
        ((k >= 2) & (expected > 0), (np.clip(ratio, 1, 5) - 1) / 4),
    ]
    cust, cell, value = [], [], []
    for j, (who, x) in enumerate(parts):
        rows = np.flatnonzero(who)
        cust += [rows, rows]
        cell += [np.full(len(rows), 2 * j), np.full(len(rows), 2 * j + 1)]
        value += [x[rows], np.ones(len(rows))]
    return np.concatenate(cust), np.concatenate(cell), np.concatenate(value)


def _session_blocks(b: Blocks, ix: Indexed, sessions: Sessions) -> None:
    """Transitions between (type, role) states, and gaps before each event, per kind."""
    n_types = MAX_EVENT_TYPES
    n_states = 2 + 3 * n_types
    ev = roles(ix, sessions) if len(ix.e_sec) else pd.DataFrame(columns=["s", "t", "type", "role"])
    s, etype = ev["s"].to_numpy(np.int64), ev["type"].to_numpy(np.int64)
    purchase = sessions.s_order[s] >= 0
    role = ev["role"].to_numpy(np.int64)
    role = np.where(~purchase & (role == LINE), OTHER, role)
    state = 2 + etype * 3 + role
    cust = sessions.s_cust[s]
    first, last = np.ones(len(s), bool), np.ones(len(s), bool)
    first[1:] = last[:-1] = s[1:] != s[:-1]
    prev = np.where(first, START, np.r_[START, state[:-1]][: len(s)])
    gap = np.diff(ev["t"].to_numpy(np.int64), prepend=0)
    n_gaps = len(GAP_EDGES) - 1
    for kind, sel in (("purchase", purchase), ("browse", ~purchase)):
        trans_c = np.r_[cust[sel], cust[sel & last]]
        trans_cell = np.r_[prev[sel] * n_states + state[sel], state[sel & last] * n_states + END]
        b.add(f"{kind}_chain", trans_c, trans_cell, n_states * n_states)
        inner = sel & ~first
        gap_cell = etype[inner] * n_gaps + _bin(GAP_EDGES, gap[inner])
        b.add(f"{kind}_gaps", cust[inner], gap_cell, n_types * n_gaps)
        # each session's shape: its line products and its events
        lines = np.bincount(s[sel & (role == LINE)], minlength=len(sessions.s_start))
        length = np.bincount(s[sel], minlength=len(sessions.s_start))
        ids = np.unique(s[sel])
        cells = _shape_cell(lines[ids], length[ids])
        b.add(f"{kind}_shape", sessions.s_cust[ids], cells, (MAX_LINES + 1) * (SESSION_LIMIT + 1))


def _shape_cell(lines: np.ndarray, length: np.ndarray) -> np.ndarray:
    return np.minimum(lines, MAX_LINES) * (SESSION_LIMIT + 1) + np.minimum(length, SESSION_LIMIT)


def _price_block(b: Blocks, ix: Indexed) -> None:
    """Per customer and distinct product bought: its mean log unit price (scaled to [0, 1]),
    next to a 1."""
    cust = ix.o_cust[ix.i_order]
    lo, hi = LOGP_RANGE
    logp = (np.clip(np.log(np.maximum(ix.i_price, PRICE_FLOOR)), lo, hi) - lo) / (hi - lo)
    key = pd.DataFrame({"c": cust, "p": ix.i_prod, "x": logp}).groupby(["c", "p"])["x"].mean()
    c = key.index.get_level_values("c").to_numpy(np.int64)
    p = key.index.get_level_values("p").to_numpy(np.int64)
    n = len(ix.p_cat)
    b.add("price", np.r_[c, c], np.r_[p, n + p], 2 * n, np.r_[key.to_numpy(), np.ones(len(c))])


# ---------------------------------------------------------------------- post-processing
def _kept(noisy: np.ndarray, sd: float) -> np.ndarray:
    """Noisy counts with the cells that do not clear the bar set to 0 (an empty cell passes
    with probability ``EMPTY_SHARE`` over the histogram)."""
    bar = sd * float(ndtri(1 - EMPTY_SHARE / max(len(noisy), 1)))
    return np.where(noisy > bar, noisy, 0.0)


def _released(noisy: np.ndarray, bar: float) -> list[int]:
    """Codes whose noisy count clears ``bar``, most frequent first."""
    keep = np.flatnonzero(noisy >= bar)
    return [int(i) for i in keep[np.argsort(-noisy[keep], kind="stable")]]


def _recode_statuses(ix: Indexed, noisy: np.ndarray, bar: float) -> tuple[Indexed, list]:
    """The shop with statuses re-coded to the released ones (most frequent first; orders of
    a status not released take the most frequent one)."""
    if ix.o_status is None:
        return ix, []
    codes = [c for c in _released(noisy, bar) if c < len(ix.statuses)]
    if not codes:
        return replace(ix, o_status=None, statuses=[]), []
    lookup = np.zeros(MAX_STATUSES, np.int64)
    lookup[codes] = np.arange(len(codes))
    statuses = [ix.statuses[c] for c in codes]
    return replace(ix, o_status=lookup[ix.o_status], statuses=statuses), statuses


def _noisy_price(noisy: np.ndarray, sd: float, ix: Indexed) -> np.ndarray:
    """Per product: noisy mean log price where its count clears the bar, else its category's
    (else the shop's) median of those."""
    n = len(ix.p_cat)
    num, den = noisy[:n], noisy[n:]
    ok = _kept(den, sd) > 0
    lo, hi = LOGP_RANGE
    logp = np.where(ok, lo + (hi - lo) * np.clip(num / np.where(ok, den, 1), 0, 1), np.nan)
    overall = np.nanmedian(logp) if ok.any() else 0.0
    for c in np.unique(ix.p_cat):
        sel = ix.p_cat == c
        known = logp[sel & ok]
        logp[sel & ~ok] = np.median(known) if len(known) else overall
    return np.exp(logp)


def _ratios(noisy: np.ndarray, sd: float) -> dict[str, float]:
    out = {}
    for j, (name, scale, offset, default) in enumerate(
        (("session_share", 1.0, 0.0, 1.0), ("spread", 3.0, 0.0, 1.0), ("dispersion", 4.0, 1.0, 1.0))
    ):
        num, den = noisy[2 * j], noisy[2 * j + 1]
        ok = den > 3 * sd
        out[name] = float(np.clip(num / den, 0, 1) * scale + offset) if ok else default
    return out


def _intensity(noisy: np.ndarray, sd: float, n_days: int, weekday0: int) -> np.ndarray:
    """Daily intensity (mean 1): the rate per period (interior events over exposure, linear
    between the periods' middles) times the weekday factor."""
    n_periods = n_days // PERIOD + 1
    counts, exposure = noisy[:n_periods], noisy[n_periods : 2 * n_periods]
    days = np.arange(n_days)
    ok = exposure > 3 * sd
    if ok.any():
        middle = np.arange(n_periods) * PERIOD + (PERIOD - 1) / 2
        raw = np.clip(counts[ok], 0, None) / exposure[ok]
        trend = np.interp(days, middle[ok], raw)
    else:
        trend = np.ones(n_days)
    factor = np.clip(noisy[2 * n_periods :], 0, None)
    factor = factor / factor.mean() if factor.sum() > 7 * sd else np.ones(7)
    w = np.maximum(trend * np.maximum(factor[(weekday0 + days) % 7], 0.05), 1e-6)
    return w / w.mean()


def _hours(noisy: np.ndarray, sd: float) -> np.ndarray:
    """(7, 24) hour probabilities per weekday: the weekday or weekend histogram."""
    kept = _kept(noisy, sd).reshape(2, 24) + 1.0
    profile = kept[[0, 0, 0, 0, 0, 1, 1]]
    return profile / profile.sum(1, keepdims=True)


def _rate_cap(noisy: np.ndarray, sd: float) -> float:
    """The 99th percentile of the released rates (upper edge of its cell; 1 when none)."""
    kept = _kept(noisy, sd)
    if kept.sum() <= 0:
        return 1.0
    cell = int(np.searchsorted(np.cumsum(kept) / kept.sum(), 0.99))
    return float(RATE_EDGES[min(cell, len(RATE_EDGES) - 1)])


def _calendar(noisy: dict, sd: float, ix: Indexed) -> Calendar:
    weekday0 = int((ix.day0 + 3) % 7)
    k = len(RATE_EDGES)
    return Calendar(
        day0=ix.day0,
        n_days=ix.n_days,
        end_second=ix.n_days * SECONDS_PER_DAY - 1,  # the history's last day is public
        order_days=_intensity(noisy["orders_days"], sd, ix.n_days, weekday0),
        session_days=_intensity(noisy["sessions_days"], sd, ix.n_days, weekday0),
        order_hours=_hours(noisy["orders_hours"], sd),
        session_hours=_hours(noisy["sessions_hours"], sd),
        order_rate_cap=_rate_cap(noisy["rates"][:k], sd),
        session_rate_cap=_rate_cap(noisy["rates"][k:], sd),
    )


def _hist_quantiles(edges: np.ndarray, noisy: np.ndarray, sd: float, default: float):
    kept = _kept(noisy, sd)
    if kept.sum() <= 0:
        return np.full(QUANTILES, default)
    cdf = np.r_[0.0, np.cumsum(kept)] / kept.sum()
    return np.interp(np.linspace(0, 1, QUANTILES), cdf, edges)


def _baskets(noisy, sd, ix: Indexed, price, scale: PriceScale, dispersion) -> BasketModel:
    n_cat = _n_cat(ix)
    buy = _kept(noisy["buy"], sd) + SMOOTHING
    view = _kept(noisy["view"], sd) + SMOOTHING
    cat_lines = np.bincount(ix.p_cat, weights=buy, minlength=n_cat)
    cat_views = np.bincount(ix.p_cat, weights=view, minlength=n_cat)
    qty = _kept(noisy["quantity"], sd)
    if qty.sum() <= 0:
        qty = np.r_[1.0, np.zeros(QTY_MAX - 1)]
    logp = np.log(np.maximum(price, PRICE_FLOOR))
    return BasketModel(
        p_cat=ix.p_cat,
        p_price=price,
        p_buy=buy,
        p_view=view,
        p_z=(logp - scale.mean[ix.p_cat]) / scale.std[ix.p_cat],
        spread=scale.spread,
        cat_share=cat_lines / cat_lines.sum(),
        view_cat_share=cat_views / cat_views.sum(),
        qty_values=np.arange(1, QTY_MAX + 1)[qty > 0],
        qty_probs=qty[qty > 0] / qty.sum(),
        dispersion=dispersion,
        discount_q=_hist_quantiles(DISCOUNT_EDGES, noisy["discount"], sd, 0.0),
        ratio_q=_hist_quantiles(RATIO_EDGES, noisy["ratio"], sd, 1.0),
    )


# ---------------------------------------------------------------------- session templates
def _templates(noisy, sd, ix: Indexed, type_codes, purchase_event, rng) -> Templates:
    """Purchase and browsing templates generated from the noisy chains and gaps."""
    n_states = 2 + 3 * MAX_EVENT_TYPES
    allowed = np.zeros(n_states, bool)
    allowed[END] = True
    for c in type_codes:
        allowed[2 + 3 * c : 5 + 3 * c] = True
    purchase_code = ix.event_types.index(purchase_event) if purchase_event in ix.event_types else -1
    parts = []
    for kind in (1, 0):
        name = "purchase" if kind else "browse"
        chain = _kept(noisy[f"{name}_chain"], sd).reshape(n_states, n_states) * allowed[None]
        gaps = _kept(noisy[f"{name}_gaps"], sd).reshape(MAX_EVENT_TYPES, -1)
        walked = _generate(chain, gaps, kind, purchase_code, rng, CANDIDATES * N_TEMPLATES)
        parts.append(_resample(walked, _kept(noisy[f"{name}_shape"], sd), rng))
    templates = _assemble(parts)
    lookup = np.full(MAX_EVENT_TYPES, -1, np.int64)
    lookup[type_codes] = np.arange(len(type_codes))
    return replace(templates, ev_type=lookup[templates.ev_type])


def _resample(ev: dict, shape: np.ndarray, rng) -> dict:
    """``N_TEMPLATES`` of the walked sessions, drawn so that their shapes (line events,
    events) follow the released shape histogram (all walked sessions' shapes alike when the
    release kept none of theirs)."""
    if not len(ev["s"]):
        return ev
    n = int(ev["s"].max()) + 1
    line = np.bincount(ev["s"][ev["role"] == LINE], minlength=n)
    cell = _shape_cell(line, np.bincount(ev["s"], minlength=n))
    seen = np.bincount(cell, minlength=len(shape))
    weight = shape[cell] / seen[cell]
    weight = weight if weight.sum() > 0 else np.ones(n)
    pick = rng.choice(n, min(N_TEMPLATES, n), replace=True, p=weight / weight.sum())
    counts = np.bincount(ev["s"], minlength=n)
    starts = np.cumsum(counts) - counts  # events are sorted by session
    size = counts[pick]
    within = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
    rows = np.repeat(starts[pick], size) + within
    new_id = np.repeat(np.arange(len(pick)), size)
    out = {k: v[rows] for k, v in ev.items()}
    out["s"] = new_id
    return out


def _generate(
    chain: np.ndarray, gaps: np.ndarray, kind: int, purchase_code: int, rng, n_sessions: int
) -> dict:
    """``n_sessions`` sessions walked through the chain: events (session, type, role, time),
    sorted by session and time."""
    out = {"s": [], "type": [], "role": [], "t": []}
    rows = chain.sum(1)
    if rows[START] <= 0:
        return {k: np.zeros(0, np.int64) for k in out}
    cum = np.cumsum(chain, 1) / np.where(rows > 0, rows, 1)[:, None]
    cum[rows <= 0, END] = 1.0  # a state never left in the release ends the session
    gap_rows = gaps.sum(1)
    gap_cum = np.cumsum(gaps, 1) / np.where(gap_rows > 0, gap_rows, 1)[:, None]
    state = np.full(n_sessions, START)
    alive = np.arange(n_sessions)
    clock = np.zeros(n_sessions)
    for step in range(SESSION_LIMIT):
        nxt = np.minimum((rng.random(len(alive))[:, None] > cum[state[alive]]).sum(1), len(cum) - 1)
        go = nxt != END
        alive, nxt = alive[go], nxt[go]
        if not len(alive):
            break
        typ = (nxt - 2) // 3
        if step:
            cell = np.minimum(
                (rng.random(len(alive))[:, None] > gap_cum[typ]).sum(1), len(GAP_EDGES) - 2
            )
            lo, hi = GAP_EDGES[cell], GAP_EDGES[cell + 1]
            seconds = np.where(gap_rows[typ] > 0, lo + rng.random(len(alive)) * (hi - lo), 60.0)
            clock[alive] += np.round(seconds)
        state[alive] = nxt
        for key, value in (
            ("s", alive),
            ("type", typ),
            ("role", (nxt - 2) % 3),
            ("t", clock[alive]),
        ):
            out[key].append(value.copy())
    ev = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    order = np.lexsort((ev["t"], ev["s"]))
    ev = {k: v[order].astype(np.int64) for k, v in ev.items()}
    ev["kind"] = np.full(len(ev["s"]), kind)
    ev["anchor_type"] = np.full(len(ev["s"]), purchase_code if kind else -2)
    return ev


def _assemble(parts: list[dict]) -> Templates:
    """Templates (the ``Templates`` arrays) from generated events of both kinds."""
    frames = []
    offset = 0
    for ev in parts:
        if not len(ev.get("s", [])):
            continue
        frame = pd.DataFrame({k: ev[k] for k in ("s", "type", "role", "t", "kind", "anchor_type")})
        frame["s"] += offset
        offset = int(frame["s"].max()) + 1
        frames.append(frame)
    if not frames:
        empty = np.zeros(0, np.int64)
        return Templates(*(empty,) * 9)
    ev = pd.concat(frames, ignore_index=True)
    ev["s"] = pd.factorize(ev["s"])[0]
    by = ev.groupby("s", sort=True)
    # purchase sessions end in their order: the last purchase event (else the last event) is 0
    is_anchor = (ev["type"] == ev["anchor_type"]) | (ev["kind"] == 0)
    anchor_t = ev["t"].where(is_anchor).groupby(ev["s"]).max().fillna(by["t"].max())
    first_t = by["t"].min()
    kind = by["kind"].first().to_numpy(np.int64)
    base = np.where(kind == 1, anchor_t.to_numpy(), first_t.to_numpy())
    line = ev["role"] == LINE
    other = ev["role"] == OTHER
    rank = np.where(
        line,
        ev.assign(_l=line).groupby(["s", "type", "_l"]).cumcount(),
        np.where(other, ev.assign(_o=other).groupby(["s", "_o"]).cumcount(), 0),
    )
    # an order's L products take the line roles 0..L-1 of every event type with line events
    # (viewed, then carted...); a type's line events beyond the fewest draw fresh products
    per_type = ev[line].groupby(["s", "type"]).size().groupby(level="s").min()
    lines = per_type.reindex(np.arange(len(kind)), fill_value=0).to_numpy(np.int64)
    others = pd.Series(np.where(other, rank + 1, 0)).groupby(ev["s"]).max().to_numpy(np.int64)
    length = by.size().to_numpy(np.int64)
    return Templates(
        kind=kind,
        lines=lines,
        others=others,
        start=np.r_[0, np.cumsum(length)[:-1]].astype(np.int64),
        length=length,
        ev_type=ev["type"].to_numpy(np.int64),
        ev_offset=(ev["t"].to_numpy() - base[ev["s"].to_numpy()]).astype(np.int64),
        ev_role=ev["role"].to_numpy(np.int64),
        ev_rank=rank.astype(np.int64),
    )
