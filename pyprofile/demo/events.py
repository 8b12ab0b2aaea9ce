"""Demo clickstream (``raw.events``): a session before every order, plus browsing sessions.

Sessions are numbered purchase sessions first (one per order, same row as the order), then
browsing sessions; every event is a session row plus an offset in seconds from its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pyprofile.demo.customer_types import CATEGORIES, EVENT_TYPES, per_type
from pyprofile.demo.customers import Cohort
from pyprofile.demo.items import Items
from pyprofile.demo.orders import Orders
from pyprofile.demo.products import Catalog
from pyprofile.demo.sampling import DaySampler, choice_rows
from pyprofile.demo.seasonality import LAST_DAY


@dataclass
class Sessions:
    customer: np.ndarray  # row in the cohort
    start: np.ndarray  # seconds since the first day of the history
    number: np.ndarray  # session_no, unique across chunks
    n_purchase: int  # the first n_purchase sessions end in an order
    browse_views: np.ndarray  # per browsing session: products viewed
    browse_cart: np.ndarray  # per browsing session: whether the first view goes to the cart


@dataclass
class EventLog:
    """Events collected as parallel arrays, one block per kind of event."""

    session: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    offset: list[np.ndarray] = field(default_factory=list)
    product: list[np.ndarray] = field(default_factory=list)  # catalog row, -1 for none

    def add(self, sessions, etype: str, offset, product) -> None:
        self.session.append(sessions)
        self.kind.append(np.full(len(sessions), EVENT_TYPES.index(etype), dtype=np.int8))
        self.offset.append(offset)
        self.product.append(product)


def draw_sessions(
    rng: np.random.Generator,
    cohort: Cohort,
    orders: Orders,
    sampler: DaySampler,
    counters: dict[str, int],
) -> Sessions:
    """A session starting 5-40 minutes before each order, and Poisson browsing sessions from
    signup until 30 days after the customer's last active day."""
    browse_end = np.minimum(cohort.active_end + 30, LAST_DAY)
    months = (browse_end - cohort.signup + 1) / 30.4
    spread = rng.gamma(3.0, 1 / 3.0, len(cohort))
    n_browse = rng.poisson(per_type(cohort.ctype, "sessions_per_month") * months * spread)
    b_cust = np.repeat(np.arange(len(cohort)), n_browse)
    b_day = sampler.days(rng, cohort.signup[b_cust], browse_end[b_cust])
    b_sec = b_day * 86400 + rng.integers(8 * 3600, 23 * 3600, len(b_cust))
    b_views = 1 + rng.poisson(2.0, len(b_cust))
    b_cart = rng.random(len(b_cust)) < 0.15
    o_cust = orders.customer
    s_cust = np.concatenate([o_cust, b_cust])
    s_start = np.concatenate([orders.sec - rng.integers(300, 2400, len(o_cust)), b_sec])
    session_no = counters["session"] + np.arange(len(s_cust))
    counters["session"] += len(s_cust)
    return Sessions(s_cust, s_start, session_no, len(o_cust), b_views, b_cart)


def session_events(
    rng: np.random.Generator,
    sessions: Sessions,
    orders: Orders,
    items: Items,
    cat_pref: np.ndarray,
    catalog: Catalog,
) -> EventLog:
    """Every session opens with a page view; then purchase and browsing events."""
    log = EventLog()
    all_s = np.arange(len(sessions.customer))
    log.add(all_s, "page_view", np.zeros(len(all_s)), np.full(len(all_s), -1))
    _purchase_events(rng, log, sessions, orders, items)
    _browse_events(rng, log, sessions, cat_pref, catalog)
    return log


def _purchase_events(
    rng: np.random.Generator, log: EventLog, sessions: Sessions, orders: Orders, items: Items
) -> None:
    """View and add to cart each bought product, then check out and buy."""
    i_order, i_prod = items.order, items.product
    log.add(i_order, "product_view", rng.integers(20, 200, len(i_order)), i_prod)
    log.add(i_order, "add_to_cart", rng.integers(200, 280, len(i_order)), i_prod)
    ord_s = np.arange(sessions.n_purchase)
    end_off = (orders.sec - sessions.start[: sessions.n_purchase]).astype(float)
    log.add(ord_s, "checkout", end_off - 60, np.full(len(ord_s), -1))
    log.add(ord_s, "purchase", end_off, np.full(len(ord_s), -1))


def _browse_events(
    rng: np.random.Generator,
    log: EventLog,
    sessions: Sessions,
    cat_pref: np.ndarray,
    catalog: Catalog,
) -> None:
    """Product views in the customer's preferred categories; some first views go to the cart."""
    first = sessions.n_purchase
    b_cust = sessions.customer[first:]
    v_sess = np.repeat(np.arange(len(b_cust)), sessions.browse_views)
    v_cat = choice_rows(rng, cat_pref[b_cust[v_sess]])
    v_prod = np.zeros(len(v_sess), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        mask = v_cat == c
        pool = np.flatnonzero(catalog.category == c)
        if mask.any():
            v_prod[mask] = pool[rng.integers(0, len(pool), mask.sum())]
    log.add(first + v_sess, "product_view", rng.integers(20, 900, len(v_sess)), v_prod)
    first_view = np.ones(len(v_sess), dtype=bool)
    first_view[1:] = v_sess[1:] != v_sess[:-1]
    cart_rows = first_view & sessions.browse_cart[v_sess]
    log.add(
        first + v_sess[cart_rows], "add_to_cart", np.full(cart_rows.sum(), 950), v_prod[cart_rows]
    )


def events_table(log: EventLog, sessions: Sessions, cust_no: np.ndarray, epoch: int) -> pa.Table:
    """The event rows."""
    ev_s = np.concatenate(log.session)
    ev_prod = np.concatenate(log.product)
    return pa.table(
        {
            "customer_no": cust_no[sessions.customer[ev_s]],
            "event_sec": epoch + sessions.start[ev_s] + np.concatenate(log.offset).astype(np.int64),
            "event_type": np.array(EVENT_TYPES)[np.concatenate(log.kind)],
            "product_no": pa.array(ev_prod + 1, mask=ev_prod < 0),
            "session_no": sessions.number[ev_s],
        }
    )
