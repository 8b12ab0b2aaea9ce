"""A shop's real timelines as integer arrays: customers, orders, lines, products, sessions.

:func:`index_shop` turns the five raw tables (cleaned: unique keys, no orphans, valid times)
into arrays indexed by row (customer, order, product), times as seconds since the first day of
the history. :func:`link_sessions` groups events into sessions (their ``session_id``, else a
30-minute inactivity gap) and ties each order to the session whose purchase event is closest
to it (within an hour). :func:`customer_summary` condenses each customer's timeline into the
few numbers the customer model learns jointly with the customer's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyprofile.errors import InputError

SECONDS_PER_DAY = 86_400
SESSION_GAP = 1800  # seconds of inactivity that end a session without a session id
LINK_WINDOW = 3600  # a purchase event this close to an order (same customer) is its session
PREFIX = "tl_"  # summary columns; attributes with this prefix are refused
MAX_STATUSES = 8
MAX_CATEGORIES = 12


@dataclass
class Shop:
    """The cleaned raw tables (pandas) and the names of their optional columns in use."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    products: pd.DataFrame
    events: pd.DataFrame | None
    purchase_event: str = "purchase"


@dataclass
class Indexed:
    """Integer-coded timelines. Times are seconds since ``day0`` (days since 1970-01-01)."""

    day0: int
    n_days: int
    n_customers: int
    signup: np.ndarray  # float seconds, NaN when unknown or no signup column
    o_cust: np.ndarray
    o_sec: np.ndarray
    o_amount: np.ndarray
    o_discount: np.ndarray | None
    o_status: np.ndarray | None  # codes into statuses
    statuses: list
    i_order: np.ndarray
    i_prod: np.ndarray
    i_qty: np.ndarray
    i_price: np.ndarray
    categories: list  # product category vocabulary (most lines first); None = unknown
    p_cat: np.ndarray  # category code per product
    e_cust: np.ndarray
    e_sec: np.ndarray
    e_type: np.ndarray  # codes into event_types
    event_types: list
    e_prod: np.ndarray  # product row, -1 for none
    e_key: np.ndarray  # session key code, -1 when absent


def _seconds(values: pd.Series) -> np.ndarray:
    """Timestamps as float seconds since 1970 (NaN for missing)."""
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out = ts.to_numpy(dtype="datetime64[us]").astype(np.int64).astype(float) / 1e6
    out[ts.isna().to_numpy()] = np.nan
    return out


def _codes(values: pd.Series, limit: int) -> tuple[np.ndarray, list]:
    """Codes by frequency (most frequent 0); values beyond ``limit`` go to the last code."""
    filled = values.astype("object").where(values.notna(), None)
    counts = filled.value_counts(dropna=False)
    vocab = list(counts.index[:limit])
    lookup = {v: i for i, v in enumerate(vocab)}
    codes = np.array([lookup.get(v, len(vocab) - 1) for v in filled], dtype=np.int64)
    return codes, [None if v is None or v != v else v for v in vocab]


def _lookup(keys: pd.Series, index: pd.Index, what: str) -> np.ndarray:
    rows = index.get_indexer(keys.astype(str))
    if (rows < 0).any():
        raise InputError(f"{what}: {int((rows < 0).sum())} row(s) refer to unknown keys")
    return rows


def index_shop(shop: Shop) -> Indexed:
    """Integer arrays of a shop's timelines (orders sorted by customer and time)."""
    customers = pd.Index(shop.customers["customer_id"].astype(str))
    if customers.has_duplicates:
        raise InputError("customers: customer_id must be unique")
    orders = shop.orders.assign(_c=_lookup(shop.orders["customer_id"], customers, "orders"))
    orders = orders.assign(_t=_seconds(orders["ordered_at"])).sort_values(["_c", "_t"])
    signup = (
        _seconds(shop.customers["signup_at"])
        if "signup_at" in shop.customers
        else np.full(len(customers), np.nan)
    )
    events = shop.events if shop.events is not None else _no_events()
    e_sec = _seconds(events["event_at"]) if len(events) else np.zeros(0)
    starts = [
        np.nanmin(x) for x in (signup, orders["_t"].to_numpy(), e_sec) if np.isfinite(x).any()
    ]
    ends = [np.nanmax(x) for x in (orders["_t"].to_numpy(), e_sec, signup) if np.isfinite(x).any()]
    if not starts:
        raise InputError("no valid order, event or sign-up time: nothing to learn from")
    day0 = int(np.floor(min(starts) / SECONDS_PER_DAY))
    n_days = int(np.floor(max(ends) / SECONDS_PER_DAY)) - day0 + 1
    base = day0 * SECONDS_PER_DAY
    return Indexed(
        day0=day0,
        n_days=n_days,
        n_customers=len(customers),
        signup=signup - base,
        **_order_arrays(orders, base),
        **_line_arrays(shop, pd.Index(orders["order_id"].astype(str))),
        **_event_arrays(events, e_sec - base, customers, shop),
    )


def _no_events() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [], "event_at": [], "event_type": []})


def _order_arrays(orders: pd.DataFrame, base: int) -> dict:
    status, statuses = _codes(orders["status"], MAX_STATUSES) if "status" in orders else (None, [])
    discount = orders["discount"].fillna(0).to_numpy(float) if "discount" in orders else None
    return {
        "o_cust": orders["_c"].to_numpy(np.int64),
        "o_sec": np.round(orders["_t"].to_numpy() - base).astype(np.int64),
        "o_amount": orders["amount"].to_numpy(float),
        "o_discount": discount,
        "o_status": status,
        "statuses": statuses,
    }


def _line_arrays(shop: Shop, orders: pd.Index) -> dict:
    products = pd.Index(shop.products["product_id"].astype(str))
    items = shop.items
    if "category" in shop.products:
        p_cat, categories = _codes(shop.products["category"], MAX_CATEGORIES)
    else:
        p_cat, categories = np.zeros(len(products), np.int64), [None]
    return {
        "i_order": _lookup(items["order_id"], orders, "order_items"),
        "i_prod": _lookup(items["product_id"], products, "order_items"),
        "i_qty": items["quantity"].to_numpy(np.int64),
        "i_price": items["unit_price"].to_numpy(float),
        "categories": categories,
        "p_cat": p_cat,
    }


def _event_arrays(events, e_sec, customers: pd.Index, shop: Shop) -> dict:
    n = len(events)
    e_type, event_types = _codes(events["event_type"], 64) if n else (np.zeros(0, np.int64), [])
    products = pd.Index(shop.products["product_id"].astype(str))
    if "product_id" in events and n:
        e_prod = products.get_indexer(events["product_id"].astype(str))
        e_prod[events["product_id"].isna().to_numpy()] = -1
    else:
        e_prod = np.full(n, -1, np.int64)
    if "session_id" in events and n:
        key = events["session_id"].astype("object").where(events["session_id"].notna(), None)
        e_key = pd.factorize(key, use_na_sentinel=True)[0]
    else:
        e_key = np.full(n, -1, np.int64)
    return {
        "e_cust": _lookup(events["customer_id"], customers, "events") if n else np.zeros(0, int),
        "e_sec": np.round(e_sec).astype(np.int64),
        "e_type": e_type,
        "event_types": event_types,
        "e_prod": e_prod.astype(np.int64),
        "e_key": e_key.astype(np.int64),
    }


@dataclass
class Sessions:
    """Events grouped into sessions, sessions tied to orders."""

    e_session: np.ndarray  # per event (sorted by session, then time): its session
    order: np.ndarray  # event permutation: events in session/time order
    s_cust: np.ndarray
    s_start: np.ndarray
    s_order: np.ndarray  # the order a session ends in, -1 for browsing sessions
    o_session: np.ndarray  # per order: its session, -1 when none


def link_sessions(ix: Indexed, purchase_event: str) -> Sessions:
    """Sessions (session id, else inactivity gap) and the order each purchase session ends in."""
    n = len(ix.e_sec)
    has_key = ix.e_key >= 0
    order = np.lexsort((ix.e_sec, np.where(has_key, ix.e_key, -1), ix.e_cust))
    cust, sec, key = ix.e_cust[order], ix.e_sec[order], ix.e_key[order]
    new = np.ones(n, dtype=bool)
    if n:
        same_cust = cust[1:] == cust[:-1]
        keyed = (key[1:] >= 0) & (key[:-1] >= 0)
        same = np.where(keyed, key[1:] == key[:-1], (sec[1:] - sec[:-1]) <= SESSION_GAP)
        new[1:] = ~(same_cust & same)
    e_session_sorted = np.cumsum(new) - 1
    e_session = np.empty(n, np.int64)
    e_session[order] = e_session_sorted
    starts = np.flatnonzero(new)
    s_cust, s_start = cust[starts], sec[starts]
    s_order, o_session = _link_orders(ix, e_session, purchase_event, len(starts))
    return Sessions(e_session, order, s_cust, s_start, s_order, o_session)


def _link_orders(ix: Indexed, e_session, purchase_event: str, n_sessions: int):
    """Tie each order to the session of the nearest purchase event of its customer within
    ``LINK_WINDOW`` seconds (one order per session, one session per order)."""
    s_order = np.full(n_sessions, -1, np.int64)
    o_session = np.full(len(ix.o_sec), -1, np.int64)
    if purchase_event not in ix.event_types or not len(ix.o_sec):
        return s_order, o_session
    code = ix.event_types.index(purchase_event)
    buys = np.flatnonzero(ix.e_type == code)
    left = pd.DataFrame({"t": ix.o_sec, "c": ix.o_cust, "o": np.arange(len(ix.o_sec))})
    right = pd.DataFrame({"t": ix.e_sec[buys], "c": ix.e_cust[buys], "s": e_session[buys]})
    merged = pd.merge_asof(
        left.sort_values("t"),
        right.sort_values("t"),
        on="t",
        by="c",
        direction="nearest",
        tolerance=LINK_WINDOW,
    ).dropna(subset=["s"])
    merged = merged.drop_duplicates("s")  # a session ends in one order
    o_session[merged["o"].to_numpy(np.int64)] = merged["s"].to_numpy(np.int64)
    s_order[merged["s"].to_numpy(np.int64)] = merged["o"].to_numpy(np.int64)
    return s_order, o_session


def _first_last(group: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per group: count, min and max of ``values`` (NaN where a group is empty)."""
    count = np.bincount(group, minlength=n)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, group, values)
    np.maximum.at(hi, group, values)
    lo[count == 0] = np.nan
    hi[count == 0] = np.nan
    return count, lo, hi


def customer_start(ix: Indexed, sessions: Sessions) -> np.ndarray:
    """Each customer's start (seconds): the earliest of sign-up, first order and first session
    (NaN for a customer with none)."""
    n = ix.n_customers
    _, first_order, _ = _first_last(ix.o_cust, ix.o_sec.astype(float), n)
    _, first_session, _ = _first_last(sessions.s_cust, sessions.s_start.astype(float), n)
    stacked = np.vstack([ix.signup, first_order, first_session])
    out = np.full(n, np.nan)
    valid = np.isfinite(stacked).any(0)
    out[valid] = np.nanmin(stacked[:, valid], 0)
    return out
